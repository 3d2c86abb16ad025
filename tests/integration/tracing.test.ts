/**
 * OpenTelemetry traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, the HTTP request that posts an order
 * and the jobs that allocate, dispatch and book it are one trace, exported over OTLP/HTTP (JSON)
 * to a receiver run here; every log line about the order carries that trace id, and no span holds
 * customer data or the tracking token. With the variable unset, no SDK starts and nothing is sent.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { createLogger } from '../../src/logger.js';
import {
  newKey,
  orderBody,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}
interface OtlpExport {
  resourceSpans: {
    resource: { attributes: { key: string; value: { stringValue?: string } }[] };
    scopeSpans: { spans: OtlpSpan[] }[];
  }[];
}

const SPAN_KIND_SERVER = 2;

/** A minimal OTLP/HTTP trace receiver: records every JSON export POSTed to /v1/traces. */
async function startOtlpReceiver() {
  const exports: { body: string; json: OtlpExport }[] = [];
  const requests: string[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      requests.push(`${request.method} ${request.url} ${request.headers['content-type']}`);
      const body = Buffer.concat(chunks).toString('utf8');
      if (request.method === 'POST' && request.url === '/v1/traces')
        exports.push({ body, json: JSON.parse(body) });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    requests,
    spans: () =>
      exports.flatMap((e) => e.json.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function captureLogs() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { lines, log };
}

/**
 * POST /v1/orders with the body sent in two parts 50 ms apart, so that its second part arrives
 * in an event of the connection, after the request's hooks ran (the span's context must hold).
 */
async function postOrder(server: TestServer, apiKey: string, body = orderBody()) {
  const text = new TextEncoder().encode(JSON.stringify(body));
  const half = Math.floor(text.length / 2);
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(text.slice(0, half));
      await new Promise((resolve) => setTimeout(resolve, 50));
      controller.enqueue(text.slice(half));
      controller.close();
    },
  });
  const response = await fetch(`${server.url}/v1/orders`, {
    method: 'POST',
    headers: { ...shopHeaders(apiKey, newKey()), 'content-type': 'application/json' },
    body: stream,
    duplex: 'half',
  } as RequestInit);
  expect(response.status).toBe(202);
  return (await response.json()) as { id: string; links: { tracking: string } };
}

describe('tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let shop: { apiKey: string };
  const { lines, log } = captureLogs();

  beforeAll(async () => {
    db = await testDatabase();
    receiver = await startOtlpReceiver();
    server = await startTestServer(db.database, {
      // Concurrent orders share a group commit (see the batch test below).
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, INTAKE_BATCH_MS: '300' },
      overrides: { log },
    });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'otel-carrier',
      webhookSecret: 'otel-carrier-secret',
      progress: false,
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-otel', stock: { 'MASK-N95': 10 } });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await receiver?.close();
    await db?.drop();
  });

  it('reports tracing on at start', () => {
    expect(server.tracing.enabled).toBe(true);
    const started = lines.find((l) => l.tracing === 'on');
    expect(started).toMatchObject({ serviceName: 'surgeline', endpoint: receiver.url });
  });

  it('makes the HTTP request and the allocation, dispatch and booking jobs one trace; logs carry its id', async () => {
    const body = orderBody({ priority: 'express' });
    const order = await postOrder(server, shop.apiKey, body);
    await waitForOrderStatus(server.app, shop.apiKey, order.id, 'dispatched');

    const spansNamed = (prefix: string) => receiver.spans().filter((s) => s.name.startsWith(prefix));
    const booking = `process dispatch.otel-carrier.`;
    await waitFor(async () => {
      await server.tracing.flush();
      return spansNamed(booking).length > 0;
    }, 'the booking job span');

    const [http] = receiver
      .spans()
      .filter((s) => s.kind === SPAN_KIND_SERVER && s.name === 'POST /v1/orders');
    expect(http, 'the HTTP server span').toBeDefined();
    expect(http.attributes).toContainEqual({ key: 'http.route', value: { stringValue: '/v1/orders' } });
    expect(http.attributes).toContainEqual({
      key: 'http.response.status_code',
      value: { intValue: 202 },
    });
    expect(http.parentSpanId ?? '').toBe('');

    const jobs = {
      allocation: spansNamed('process allocation.express'),
      dispatch: spansNamed('process dispatch.express'),
      booking: spansNamed(`${booking}express`),
    };
    for (const [stage, spans] of Object.entries(jobs)) {
      expect(spans.length, `${stage} job spans`).toBeGreaterThan(0);
      for (const span of spans) expect(span.traceId, `${stage} job's trace`).toBe(http.traceId);
    }
    // The job spans hang off the trace, not beside it: each has a parent in the trace.
    const ids = new Set(receiver.spans().map((s) => s.spanId));
    for (const span of Object.values(jobs).flat()) expect(ids.has(span.parentSpanId ?? '')).toBe(true);

    // The service name (OTEL_SERVICE_NAME's default) on the exported resource.
    const service = receiver.exports[0].json.resourceSpans[0].resource.attributes.find(
      (a) => a.key === 'service.name',
    );
    expect(service?.value.stringValue).toBe('surgeline');

    // Every line about the order — the request's and each job step's — carries the trace id.
    const about = lines.filter((l) => JSON.stringify(l).includes(order.id));
    expect(about.length).toBeGreaterThan(0);
    for (const line of about) expect(line.traceId, JSON.stringify(line)).toBe(http.traceId);
    for (const line of about) expect(line.spanId).toMatch(/^[0-9a-f]{16}$/);

    // No span carries customer data or the tracking token.
    const exported = receiver.exports.map((e) => e.body).join('\n');
    const token = order.links.tracking.split('/').pop()!;
    for (const secret of [
      body.customer.name,
      body.customer.phone,
      body.customer.email,
      body.shippingAddress.line1,
      body.shippingAddress.postalCode,
      token,
    ])
      expect(exported).not.toContain(secret);
  });

  it('runs each job step inside its job span: the lines it logs name that span', async () => {
    const order = await postOrder(server, shop.apiKey);
    await waitForOrderStatus(server.app, shop.apiKey, order.id, 'dispatched');
    const done = lines.filter((l) => l.msg === 'job done' && l.orderId === order.id);
    expect(done.map((l) => String(l.queue).split('.')[0]).sort()).toEqual([
      'allocation',
      'dispatch',
      'dispatch',
    ]);
    expect(done.map((l) => l.queue)).toContain('dispatch.otel-carrier.standard');
    // A job's span ends after its step returns: flushed until every line's span is exported.
    const spans = await waitFor(async () => {
      await server.tracing.flush();
      const byId = new Map(receiver.spans().map((s) => [s.spanId, s]));
      return done.every((l) => byId.has(l.spanId as string)) && byId;
    }, 'the spans the job lines name');
    const [first] = done;
    for (const line of done) {
      const span = spans.get(line.spanId as string)!;
      expect(span.name).toBe(`process ${line.queue}`);
      expect(line.traceId).toBe(span.traceId);
      expect(span.traceId).toBe(first.traceId);
    }
  });

  it('gives each order of a group commit its own request’s trace', async () => {
    const { batches } = server.app.intakeBatcher.stats;
    const orders = await Promise.all([postOrder(server, shop.apiKey), postOrder(server, shop.apiKey)]);
    expect(server.app.intakeBatcher.stats.batches, 'one batch for both').toBe(batches + 1);
    const jobSpan = (id: string) =>
      receiver
        .spans()
        .find(
          (s) =>
            s.name.startsWith('process allocation.') &&
            s.attributes.some(
              (a) => a.key === 'bullmq.job.id' && a.value.stringValue === `allocation-${id}-1`,
            ),
        );
    const spans = await waitFor(async () => {
      await server.tracing.flush();
      const found = orders.map((o) => jobSpan(o.id));
      return found.every(Boolean) && (found as OtlpSpan[]);
    }, 'both allocation spans');
    expect(spans[0].traceId).not.toBe(spans[1].traceId);
    const servers = new Map(
      receiver
        .spans()
        .filter((s) => s.kind === SPAN_KIND_SERVER && s.name === 'POST /v1/orders')
        .map((s) => [s.traceId, s]),
    );
    for (const span of spans) expect(servers.has(span.traceId)).toBe(true);
    for (const [i, order] of orders.entries()) {
      const done = lines.filter((l) => l.msg === 'job done' && l.orderId === order.id);
      expect(done.length).toBeGreaterThan(0);
      for (const line of done) expect(line.traceId).toBe(spans[i].traceId);
    }
  });
});

describe('tracing off (OTEL_EXPORTER_OTLP_ENDPOINT unset)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  const { lines, log } = captureLogs();

  beforeAll(async () => {
    db = await testDatabase();
    receiver = await startOtlpReceiver();
    server = await startTestServer(db.database, { overrides: { log } });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'plain-carrier',
      webhookSecret: 'plain-carrier-secret',
      progress: false,
    });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await receiver?.close();
    await db?.drop();
  });

  it('starts no exporter, sends nothing, and logs no trace ids', async () => {
    expect(server.tracing.enabled).toBe(false);
    expect(server.ctx.telemetry).toBeUndefined();
    expect(lines.find((l) => l.tracing === 'off')).toBeDefined();

    const shop = await seedShopWithStock(server.app, { warehouseId: 'wh-plain', stock: { 'MASK-N95': 5 } });
    const order = await postOrder(server, shop.apiKey);
    await waitForOrderStatus(server.app, shop.apiKey, order.id, 'dispatched');
    await server.tracing.flush();
    await new Promise((resolve) => setTimeout(resolve, 500));

    expect(receiver.requests).toEqual([]);
    expect(lines.filter((l) => 'traceId' in l)).toEqual([]);
  });
});
