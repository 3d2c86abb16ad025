/**
 * "Logs" in the contract: no log line, at any level, holds a customer's name, phone, email or
 * address — also when a request or a job fails. A server logging at `debug` into a capture
 * stream gets a run of failures (U+0000 in customer fields, malformed ids and encodings,
 * malformed and poisoned JSON, unknown SKUs, a notification job that fails with a query's
 * parameters in its message); each answer is checked, then the whole log is searched for
 * every piece of customer data sent.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustomerMessage, NotificationProvider } from '../../src/integrations/notify/types.js';
import { createLogger } from '../../src/logger.js';
import { admin, newKey, orderBody, seedShopWithStock, shopHeaders } from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const NUL = '\u0000';

/** A customer of its own per case: every field is distinctive, so a leak is found by search. */
function customerData() {
  const tag = randomBytes(4).toString('hex');
  const digits = String(parseInt(tag, 16) % 100_000_000).padStart(8, '0');
  return {
    name: `Name${tag} Customer`,
    phone: `+86139${digits}`,
    email: `mail${tag}@customer.example`,
    line1: `${tag} Leaky Street`,
    line2: `Flat ${tag}B`,
    city: `City${tag}`,
    postalCode: `P${tag}`.slice(0, 9),
  };
}
type CustomerData = ReturnType<typeof customerData>;

/** Everything the log must never show. */
const secrets: string[] = [];
function remember(data: CustomerData) {
  secrets.push(data.name, data.phone, data.email, data.line1, data.line2, data.city, data.postalCode);
  // A value cut by a NUL leaks by either half; the search looks for the distinctive tag part too.
  secrets.push(data.name.split(' ')[0], data.line1.split(' ')[0]);
}

function body(data: CustomerData, overrides: Record<string, unknown> = {}) {
  return orderBody({
    customer: { name: data.name, phone: data.phone, email: data.email },
    shippingAddress: {
      region: 'shanghai-pudong',
      line1: data.line1,
      line2: data.line2,
      city: data.city,
      postalCode: data.postalCode,
      country: 'CN',
    },
    ...overrides,
  });
}

function expectProblem(response: LightMyRequestResponse, status: number, code?: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json();
  expect(problem).toMatchObject({ status });
  for (const field of ['type', 'title', 'detail', 'code'] as const)
    expect(typeof problem[field], field).toBe('string');
  if (code) expect(problem.code).toBe(code);
  expect(response.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|select |insert |params:/i);
  return problem as { code: string; errors?: { path: string; message: string }[] };
}

function expectValidation(response: LightMyRequestResponse, path: string) {
  const problem = expectProblem(response, 400, 'validation_failed');
  expect(problem.errors?.map((e) => e.path)).toContain(path);
  for (const e of problem.errors!) expect(typeof e.message).toBe('string');
}

describe('customer data never reaches the logs', () => {
  let db: TestDatabase;
  let server: TestServer;
  let apiKey: string;
  const lines: string[] = [];
  const sent: CustomerMessage[] = [];

  // A provider that fails the way a provider writing to its own database would: with the query
  // and its parameters (the customer's address and text) in the error message.
  const failingNotifier: NotificationProvider = {
    name: 'failing',
    async send(message) {
      sent.push(message);
      throw new Error(
        `Failed query: insert into outbox (to, text) values ($1, $2)\nparams: ${message.to},${message.text}`,
      );
    },
  };

  beforeAll(async () => {
    db = await testDatabase();
    const log = createLogger('debug', { write: (line: string) => void lines.push(line) });
    server = await startTestServer(db.database, { overrides: { log, notifier: failingNotifier } });
    const shop = await seedShopWithStock(server.app, {
      warehouseId: 'wh-logs',
      stock: { 'MASK-N95': 1000 },
    });
    apiKey = shop.apiKey;
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    server.app.inject({
      method: 'POST',
      url,
      headers: { ...shopHeaders(apiKey, newKey()), ...headers },
      payload: payload as object,
    });

  it('refuses U+0000 in customer fields, address lines, keys and the query with 400 validation_failed', async () => {
    const cases: [string, (d: CustomerData) => Record<string, unknown>][] = [
      ['body/customer/name', (d) => body({ ...d, name: d.name.replace(' ', NUL) })],
      ['body/shippingAddress/line1', (d) => body({ ...d, line1: `${d.line1}${NUL}` })],
      ['body/shippingAddress/line2', (d) => body({ ...d, line2: `${NUL}${d.line2}` })],
      ['body/shippingAddress/city', (d) => body({ ...d, city: d.city.replace('y', `y${NUL}`) })],
      ['body/customer/phone', (d) => body({ ...d, phone: `${d.phone}${NUL}` })],
      ['body/externalId', (d) => body(d, { externalId: `A-${NUL}` })],
      ['body/items/0/sku', (d) => body(d, { items: [{ sku: `MASK${NUL}`, quantity: 1 }] })],
    ];
    for (const [path, make] of cases) {
      const data = customerData();
      remember(data);
      expectValidation(await post('/v1/orders', make(data)), path);
    }

    // A key holding U+0000 is not a field of the contract.
    const data = customerData();
    remember(data);
    const withKey = body(data);
    (withKey.customer as Record<string, unknown>)[`na${NUL}me`] = data.name;
    const keyAnswer = await post('/v1/orders', withKey);
    expectProblem(keyAnswer, 400, 'validation_failed');

    const query = await server.app.inject({
      url: `/v1/orders?cursor=${encodeURIComponent(`abc${NUL}`)}`,
      headers: shopHeaders(apiKey),
    });
    expectValidation(query, 'query/cursor');
  });

  it('refuses U+0000 in a header with 400 validation_failed', async () => {
    const data = customerData();
    remember(data);
    // Over HTTP, Node refuses such a header itself (see the raw request below); inject hands it on.
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(apiKey), 'idempotency-key': `key${NUL}x` },
      payload: body(data),
    });
    expectValidation(response, 'headers/idempotency-key');
  });

  it('answers 404 for malformed, undecodable and over-long ids on every route with an id', async () => {
    const badIds = [
      '%00',
      `abc%00def`,
      '%E0%A4%A',
      '%',
      '%ZZ',
      'x'.repeat(210),
      'y'.repeat(600),
      'not-an-id',
    ];
    const event = { trackingNumber: 'T-1', status: 'in_transit', at: new Date().toISOString() };
    for (const id of badIds) {
      const calls: [string, string, Record<string, string>, unknown][] = [
        ['GET', `/v1/orders/${id}`, shopHeaders(apiKey), undefined],
        ['POST', `/v1/orders/${id}/cancel`, shopHeaders(apiKey), undefined],
        ['POST', `/v1/orders/${id}/feedback`, shopHeaders(apiKey), { score: 5 }],
        ['GET', `/v1/track/${id}`, {}, undefined],
        ['POST', `/v1/carriers/${id}/events`, { 'x-signature': 'sha256=00' }, event],
        ['PATCH', `/v1/admin/carriers/${id}`, admin, { enabled: false }],
      ];
      for (const [method, url, headers, payload] of calls) {
        const response = await server.app.inject({
          method: method as 'GET',
          url,
          headers,
          ...(payload === undefined ? {} : { payload: payload as object }),
        });
        const what = `${method} ${url.slice(0, 80)} → ${response.body}`;
        // A well-formed carrier id that names no carrier fails the signature check first
        // (steps/carrier-event.ts: an unknown carrier is a bad signature, 401).
        if (id === 'not-an-id' && url.startsWith('/v1/carriers/') && response.statusCode === 401) {
          expectProblem(response, 401, 'invalid_signature');
          continue;
        }
        expect(response.statusCode, what).toBe(404);
        expectProblem(response, 404, 'not_found');
      }
    }
  });

  it("answers a request Node's HTTP parser refuses (a NUL in a header) with problem+json 400", async () => {
    const { port } = new URL(server.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () =>
        socket.write(`GET /v1/orders HTTP/1.1\r\nHost: x\r\nX-Customer: a${NUL}b\r\n\r\n`),
      );
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    const [head, payload] = raw.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head.toLowerCase()).toContain('content-type: application/problem+json');
    expect(JSON.parse(payload)).toMatchObject({ status: 400, code: 'bad_request' });
  });

  it('answers malformed JSON 400 malformed_json and a __proto__ key 400 validation_failed', async () => {
    const data = customerData();
    remember(data);
    const text = JSON.stringify(body(data));
    const malformed = await server.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(apiKey, newKey()), 'content-type': 'application/json' },
      payload: text.slice(0, -7),
    });
    expectProblem(malformed, 400, 'malformed_json');

    for (const poisoned of [
      text.replace('{', '{"__proto__":{"isAdmin":true},'),
      text.replace('"customer":{', '"customer":{"constructor":{"prototype":{"polluted":true}},'),
    ]) {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: { ...shopHeaders(apiKey, newKey()), 'content-type': 'application/json' },
        payload: poisoned,
      });
      expectValidation(response, 'body');
    }
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('answers an unknown SKU 422 unknown_sku', async () => {
    const data = customerData();
    remember(data);
    const response = await post('/v1/orders', body(data, { items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }));
    expectProblem(response, 422, 'unknown_sku');
  });

  it('refuses a batch order holding U+0000 without failing the request or logging it', async () => {
    const data = customerData();
    remember(data);
    const good = customerData();
    remember(good);
    const response = await post('/v1/orders/batch', {
      orders: [
        { idempotencyKey: newKey(), ...body({ ...data, name: `${data.name}${NUL}` }) },
        { idempotencyKey: newKey(), ...body(good) },
      ],
    });
    // The request-level validator leaves batch entries to the batch route, so one bad entry
    // never fails the others.
    expect(response.statusCode, response.body).toBe(200);
    const { results } = response.json();
    expect(results[1].status).toBe(202);
    // Each entry goes through the same strict validator as a single POST.
    expect(results[0].status).toBe(400);
    expect(results[0].error.code).toBe('validation_failed');
    expect(results[0].error.errors.map((e: { path: string }) => e.path)).toContain('body/customer/name');
  });

  it('logs a failing notification job without the customer data in its error', async () => {
    const data = customerData();
    remember(data);
    const response = await post('/v1/orders', body(data));
    expect(response.statusCode, response.body).toBe(202);
    await waitFor(
      async () => sent.some((m) => m.to === data.phone || m.to === data.email),
      'a customer message to be attempted',
    );
    await waitFor(
      async () => lines.some((line) => line.includes('job failed; will retry')),
      'the failed job to be logged',
    );
  });

  it('wrote none of the customer data it was sent into the log', () => {
    expect(lines.length).toBeGreaterThan(0);
    const log = lines.join('');
    // The log did see the failures (so the search below is not vacuous).
    expect(log).toContain('job failed; will retry');
    expect(log).toContain('not logged');
    for (const secret of secrets) expect(log, `log holds ${secret}`).not.toContain(secret);
  });
});
