/**
 * A database that is not answering makes the API answer 503 with Retry-After, never 500 — on
 * both drivers. The classifier is checked on the errors the drivers really throw (drizzle wraps
 * them in a DrizzleQueryError, the driver's error on `.cause`), then a server whose database
 * was closed under it (PGlite closed; on the postgres project, the postgres.js pool ended) is
 * asked on a shop, an admin, the tracking and the readiness route. The outage of a server that
 * comes back (a TCP proxy cut and restored) is db-outage.pg.test.ts.
 */
import { createServer, type AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnavailable } from '../../src/api/plugins/errors.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { admin, newKey, orderBody, placeOrder, seedShopWithStock, shopHeaders } from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  usesServer,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

/** What a query through drizzle throws. */
async function failure(database: Database, query = sql`select 1`): Promise<unknown> {
  try {
    await database.db.execute(query);
  } catch (error) {
    return error;
  }
  throw new Error('the query did not fail');
}

/** A port on 127.0.0.1 that nothing listens on (taken, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function expectUnavailable(response: LightMyRequestResponse, what: string) {
  expect(response.statusCode, `${what} → ${response.body}`).toBe(503);
  expect(response.headers['content-type'], what).toMatch(/^application\/problem\+json/);
  expect(Number(response.headers['retry-after']), `${what} Retry-After`).toBeGreaterThan(0);
  const body = response.json();
  expect(body).toMatchObject({ status: 503 });
  for (const field of ['type', 'title', 'detail', 'code'] as const) expect(typeof body[field]).toBe('string');
  expect(response.body).not.toMatch(/Failed query|params:|\n\s+at /);
}

describe('the unavailability classifier, on real driver errors', () => {
  it('counts a query on a closed PGlite', async () => {
    const database = openDatabase('memory://', '');
    await database.ping();
    await database.close();
    const error = await failure(database, sql`select ${'x'}::text`);
    expect((error as Error).message).toMatch(/^Failed query/); // drizzle's wrapper…
    expect(((error as Error).cause as Error).message).toMatch(/PGlite is closed/); // …around the driver's error
    expect(isUnavailable(error)).toBe(true);
  });

  it('counts postgres.js on a port nothing listens on (ECONNREFUSED)', async () => {
    const database = openDatabase(`postgres://postgres@127.0.0.1:${await deadPort()}/test`, '');
    try {
      const error = await failure(database);
      expect(((error as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
      expect(isUnavailable(error)).toBe(true);
      expect(isUnavailable((error as Error).cause)).toBe(true);
    } finally {
      await database.close();
    }
  });

  it('counts postgres.js after its pool ended (CONNECTION_ENDED)', async () => {
    const database = openDatabase(`postgres://postgres@127.0.0.1:${await deadPort()}/test`, '');
    await database.close();
    const error = await failure(database);
    expect(((error as Error).cause as { code?: string }).code).toBe('CONNECTION_ENDED');
    expect(isUnavailable(error)).toBe(true);
  });

  it('counts SQLSTATE classes 08, 57P0x and 53300 anywhere in the cause chain', () => {
    const wrapped = (code: string) =>
      new Error('Failed query: select 1\nparams: ', { cause: Object.assign(new Error('x'), { code }) });
    for (const code of ['08006', '08001', '08P01', '57P01', '57P03', '53300'])
      expect(isUnavailable(wrapped(code)), code).toBe(true);
    for (const code of ['22021', '23505', '42P01', '40001', '53200'])
      expect(isUnavailable(wrapped(code)), code).toBe(false);
    const deep = new Error('a', {
      cause: new Error('b', { cause: Object.assign(new Error('c'), { code: 'ECONNRESET' }) }),
    });
    expect(isUnavailable(deep)).toBe(true);
    const aggregate = new AggregateError(
      [Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })],
      'all failed',
    );
    expect(isUnavailable(new Error('wrapper', { cause: aggregate }))).toBe(true);
  });

  it('does not count a query the database refused, even when its parameters read like an outage', async () => {
    const database = openDatabase('memory://', '');
    try {
      const nul = await failure(database, sql`select ${'a\u0000b'}::text`);
      expect(isUnavailable(nul)).toBe(false);
      // The parameter text lands in drizzle's message; it must not decide the answer.
      const lookalike = await failure(database, sql`select ${'PGlite is closed; connect ECONNREFUSED'}::int`);
      expect((lookalike as Error).message).toContain('PGlite is closed');
      expect(isUnavailable(lookalike)).toBe(false);
    } finally {
      await database.close();
    }
  });
});

describe(`a closed ${usesServer() ? 'postgres.js pool' : 'PGlite database'} answers 503 on every route`, () => {
  let db: TestDatabase;
  let server: TestServer;
  let apiKey: string;
  let tracking: string;
  let closeForReal: () => Promise<void>;

  beforeAll(async () => {
    db = await testDatabase();
    closeForReal = db.database.close; // startTestServer makes the process's close a no-op
    server = await startTestServer(db.database, { role: 'api' });
    const shop = await seedShopWithStock(server.app, { warehouseId: 'wh-outage', stock: { 'MASK-N95': 10 } });
    apiKey = shop.apiKey;
    const order = await placeOrder(server.app, apiKey, orderBody());
    tracking = new URL(order.links.tracking).pathname;
    await closeForReal();
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop().catch(() => undefined); // closing a closed PGlite throws
  });

  it('shop, admin, tracking and readiness routes: problem+json 503 with Retry-After', async () => {
    const calls = {
      'GET /v1/orders': () => server.app.inject({ url: '/v1/orders', headers: shopHeaders(apiKey) }),
      'POST /v1/orders': () =>
        server.app.inject({
          method: 'POST',
          url: '/v1/orders',
          headers: shopHeaders(apiKey, newKey()),
          payload: orderBody(),
        }),
      'GET /v1/admin/inventory': () => server.app.inject({ url: '/v1/admin/inventory', headers: admin }),
      'GET /v1/track/{token}': () => server.app.inject({ url: tracking }),
      'GET /readyz': () => server.app.inject({ url: '/readyz' }),
    };
    for (const [what, call] of Object.entries(calls)) expectUnavailable(await call(), what);
  });
});
