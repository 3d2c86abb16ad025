import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startCarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { hmacHex } from '../../src/domain/signing.js';
import { httpCarrier } from '../../src/integrations/carriers/http-carrier.js';
import type { BookingRequest, CarrierEndpoint } from '../../src/integrations/carriers/types.js';
import { MAX_ANSWER_BYTES, outboundCall } from '../../src/integrations/http.js';
import { postShopWebhook, type StatusChangedEvent } from '../../src/integrations/notify/shop-webhook.js';
import { createLogger } from '../../src/logger.js';

const API_KEY = 'sk_carrier_secret';

interface Hit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface TestServer {
  url: string;
  hits: Hit[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

/** A real HTTP server on 127.0.0.1; `handle` answers each request once its body has arrived. */
async function startServer(handle: (hit: Hit, res: ServerResponse) => void): Promise<TestServer> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      hits.push(hit);
      handle(hit, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

function answer(status: number, body = '', headers: Record<string, string> = {}) {
  return (_hit: Hit, res: ServerResponse) => res.writeHead(status, headers).end(body);
}

function endpoint(baseUrl: string): CarrierEndpoint {
  return { id: 'acme', kind: 'http', baseUrl, apiKey: API_KEY };
}

const REQUEST: BookingRequest = {
  reference: 'ship-1',
  orderId: 'order-1',
  region: 'eu-west',
  address: { line1: '1 Century Avenue', city: 'Shanghai' },
  items: [{ sku: 'SKU-1', quantity: 2 }],
  contactless: false,
  priority: 'standard',
};

function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = {
    write: (line: string) => {
      raw.push(line);
      lines.push(JSON.parse(line));
    },
  };
  return { lines, raw, log: createLogger('info', stream) };
}

const carrier = httpCarrier(2_000);

describe('outbound calls: carrier booking', () => {
  it('books on 201 with a trackingNumber, sending the key, the idempotency key and the request', async () => {
    const server = await startServer(
      answer(201, JSON.stringify({ trackingNumber: 'TRK-1', estimatedDeliveryAt: '2030-01-02T00:00:00Z' })),
    );
    const outcome = await carrier.book(endpoint(server.url), REQUEST);
    expect(outcome).toEqual({
      kind: 'booked',
      httpStatus: 201,
      trackingNumber: 'TRK-1',
      estimatedDeliveryAt: '2030-01-02T00:00:00Z',
    });
    const [hit] = server.hits;
    expect(hit.method).toBe('POST');
    expect(hit.url).toBe('/shipments');
    expect(hit.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(hit.headers['idempotency-key']).toBe('ship-1');
    expect(JSON.parse(hit.body)).toEqual(REQUEST);
  });

  it('books on 200 with a trackingNumber too', async () => {
    const server = await startServer(answer(200, JSON.stringify({ trackingNumber: 'TRK-200' })));
    expect(await carrier.book(endpoint(server.url), REQUEST)).toEqual({
      kind: 'booked',
      httpStatus: 200,
      trackingNumber: 'TRK-200',
      estimatedDeliveryAt: null,
    });
  });

  it('does not follow a 302: the redirect target is never hit and the booking is transient', async () => {
    const target = await startServer(answer(201, JSON.stringify({ trackingNumber: 'TRK-ELSEWHERE' })));
    const server = await startServer(answer(302, '', { location: `${target.url}/shipments` }));
    const outcome = await carrier.book(endpoint(server.url), REQUEST);
    expect(outcome).toMatchObject({ kind: 'transient', httpStatus: 302 });
    expect(server.hits).toHaveLength(1);
    expect(target.hits).toHaveLength(0);
  });

  it('cuts a 2xx body of several MiB at the cap: the call returns and the answer is ambiguous', async () => {
    let finished: boolean | undefined;
    const server = await startServer((_hit, res) => {
      res.on('close', () => (finished = res.writableFinished));
      res.writeHead(201, { 'content-type': 'application/json' });
      // A valid booking, padded past the cap: reading it whole would book it.
      res.write('{"trackingNumber":"TRK-BIG","pad":"');
      const chunk = 'x'.repeat(64 * 1024);
      let left = 16 * 16; // 16 MiB
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('"}');
      };
      pump();
    });
    const outcome = await carrier.book(endpoint(server.url), REQUEST);
    expect(outcome).toMatchObject({ kind: 'timeout', httpStatus: 201 });
    expect(outcome.kind !== 'booked' && outcome.detail).toContain(`over ${MAX_ANSWER_BYTES} bytes`);
    await expect.poll(() => finished).toBe(false);
  });

  it('treats 200 with {} as ambiguous (timeout), not transient', async () => {
    const server = await startServer(answer(200, '{}'));
    const outcome = await carrier.book(endpoint(server.url), REQUEST);
    expect(outcome).toMatchObject({ kind: 'timeout', httpStatus: 200 });
    expect(outcome.kind !== 'booked' && outcome.detail).toMatch(/unreadable.*no trackingNumber/);
  });

  it('treats 201 with invalid JSON as ambiguous (timeout)', async () => {
    const server = await startServer(answer(201, '{"trackingNumber": "TRK-1"'));
    const outcome = await carrier.book(endpoint(server.url), REQUEST);
    expect(outcome).toMatchObject({ kind: 'timeout', httpStatus: 201 });
    expect(outcome.kind !== 'booked' && outcome.detail).toMatch(/unreadable.*not JSON/);
  });

  it.each([401, 403])(
    'reports %i as a transient carrier fault and logs it once without the key',
    async (status) => {
      const server = await startServer(answer(status, 'bad key'));
      const { lines, raw, log } = capture();
      const outcome = await httpCarrier(2_000, log).book(endpoint(server.url), REQUEST);
      expect(outcome).toEqual({
        kind: 'transient',
        httpStatus: status,
        detail: `carrier rejected our credentials (HTTP ${status})`,
        carrierFault: 'auth',
      });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 50, carrierId: 'acme', httpStatus: status });
      expect(lines[0].msg).toBe(
        'carrier rejected our credentials (carrier fault, not a refusal of the parcel)',
      );
      const text = raw.join('');
      for (const secret of [API_KEY, '1 Century Avenue', 'Shanghai']) expect(text).not.toContain(secret);
    },
  );

  it('refuses on 422 and on another 4xx', async () => {
    const server = await startServer((hit, res) =>
      res.writeHead(server.hits.length === 1 ? 422 : 400).end('region unserviceable'),
    );
    expect(await carrier.book(endpoint(server.url), REQUEST)).toEqual({
      kind: 'refused',
      httpStatus: 422,
      detail: 'HTTP 422: region unserviceable',
    });
    expect(await carrier.book(endpoint(server.url), REQUEST)).toMatchObject({
      kind: 'refused',
      httpStatus: 400,
    });
  });

  it('honours Retry-After on 503 and caps it at 10 s', async () => {
    const server = await startServer((hit, res) =>
      res.writeHead(503, { 'retry-after': server.hits.length === 1 ? '3' : '99' }).end(),
    );
    expect(await carrier.book(endpoint(server.url), REQUEST)).toMatchObject({
      kind: 'transient',
      httpStatus: 503,
      retryAfterMs: 3000,
    });
    expect(await carrier.book(endpoint(server.url), REQUEST)).toMatchObject({
      kind: 'transient',
      httpStatus: 503,
      retryAfterMs: 10_000,
    });
  });

  it('is a timeout when no answer comes in time, transient when the connection is refused', async () => {
    const silent = await startServer(() => undefined);
    const started = Date.now();
    expect(await httpCarrier(200).book(endpoint(silent.url), REQUEST)).toMatchObject({
      kind: 'timeout',
      httpStatus: null,
    });
    expect(Date.now() - started).toBeLessThan(1_500);

    const gone = await startServer(answer(201));
    await cleanups.pop()!();
    const refused = await carrier.book(endpoint(gone.url), REQUEST);
    expect(refused).toMatchObject({ kind: 'transient', httpStatus: null });
    expect(refused.kind === 'transient' && refused.detail).toContain('ECONNREFUSED');
  });
});

describe('outbound calls: carrier cancel', () => {
  it('maps 204 to cancelled and 404 to not_found', async () => {
    const server = await startServer((hit, res) => res.writeHead(server.hits.length === 1 ? 204 : 404).end());
    expect(await carrier.cancel(endpoint(server.url), 'ship/1')).toBe('cancelled');
    expect(await carrier.cancel(endpoint(server.url), 'ship/1')).toBe('not_found');
    expect(server.hits.map((h) => [h.method, h.url])).toEqual([
      ['DELETE', '/shipments/ship%2F1'],
      ['DELETE', '/shipments/ship%2F1'],
    ]);
  });

  it('fails on a 302 without hitting the redirect target', async () => {
    const target = await startServer(answer(204));
    const server = await startServer(answer(302, '', { location: `${target.url}/shipments/ship-1` }));
    expect(await carrier.cancel(endpoint(server.url), 'ship-1')).toBe('failed');
    expect(target.hits).toHaveLength(0);
  });
});

describe('outbound calls: the shared helper', () => {
  it('reads a body of exactly the cap, and cuts one byte more', async () => {
    const server = await startServer((hit, res) =>
      res.writeHead(200).end('a'.repeat(MAX_ANSWER_BYTES + (server.hits.length === 1 ? 0 : 1))),
    );
    const exact = await outboundCall(server.url, { method: 'GET', timeoutMs: 2_000 });
    expect(exact).toMatchObject({ kind: 'answer', status: 200 });
    expect(exact.kind === 'answer' && exact.text?.length).toBe(MAX_ANSWER_BYTES);
    const over = await outboundCall(server.url, { method: 'GET', timeoutMs: 2_000 });
    expect(over).toMatchObject({ kind: 'answer', status: 200, text: null, unreadable: 'too_large' });
  });
});

describe('outbound calls: shop webhook', () => {
  const event: StatusChangedEvent = {
    type: 'order.status_changed',
    orderId: 'order-1',
    externalId: 'ext-1',
    status: 'confirmed',
    at: '2030-01-01T00:00:00.000Z',
  };

  it('resolves on 200 and still sends the X-Surgeline-Signature header', async () => {
    const server = await startServer(answer(200, 'ok'));
    await expect(postShopWebhook(`${server.url}/hook`, 'whsec', event, 2_000)).resolves.toBeUndefined();
    const [hit] = server.hits;
    expect(JSON.parse(hit.body)).toEqual(event);
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(hit.headers['x-surgeline-signature'] as string);
    expect(match).not.toBeNull();
    expect(match![2]).toBe(hmacHex('whsec', `${match![1]}.${hit.body}`));
  });

  it('throws on a 302 and does not hit the redirect target', async () => {
    const target = await startServer(answer(200));
    const server = await startServer(answer(302, '', { location: `${target.url}/hook` }));
    await expect(postShopWebhook(`${server.url}/hook`, 'whsec', event, 2_000)).rejects.toThrow('HTTP 302');
    expect(server.hits).toHaveLength(1);
    expect(target.hits).toHaveLength(0);
  });

  it('throws on 500', async () => {
    const server = await startServer(answer(500));
    await expect(postShopWebhook(`${server.url}/hook`, 'whsec', event, 2_000)).rejects.toThrow('HTTP 500');
  });

  it('throws when no answer comes in time', async () => {
    const silent = await startServer(() => undefined);
    await expect(postShopWebhook(`${silent.url}/hook`, 'whsec', event, 200)).rejects.toThrow(/no answer/);
  });
});

describe('outbound calls: the carrier simulator through the adapter', () => {
  it('books, repeats idempotently, cancels, refuses a region and rejects a wrong key as a carrier fault', async () => {
    const sim = await startCarrierSimulator({
      carrierId: 'acme',
      webhookSecret: 'whsec',
      apiKey: API_KEY,
      progress: false,
      refuseRegions: ['moon'],
    });
    cleanups.push(() => sim.close());
    const first = await carrier.book(endpoint(sim.url), REQUEST);
    expect(first).toMatchObject({ kind: 'booked', httpStatus: 201 });
    expect(await carrier.book(endpoint(sim.url), REQUEST)).toEqual(first);
    expect(sim.bookings.size).toBe(1);
    expect(await carrier.cancel(endpoint(sim.url), REQUEST.reference)).toBe('cancelled');
    expect(await carrier.cancel(endpoint(sim.url), 'unknown')).toBe('not_found');
    expect(
      await carrier.book(endpoint(sim.url), { ...REQUEST, reference: 'ship-2', region: 'moon' }),
    ).toMatchObject({
      kind: 'refused',
      httpStatus: 422,
    });
    const wrongKey = { ...endpoint(sim.url), apiKey: 'wrong' };
    expect(await carrier.book(wrongKey, { ...REQUEST, reference: 'ship-3' })).toMatchObject({
      kind: 'transient',
      httpStatus: 401,
      carrierFault: 'auth',
    });
  });
});
