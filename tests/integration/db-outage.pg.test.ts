/**
 * PostgreSQL goes away and comes back: the process talks to the server through a TCP proxy
 * this test cuts (live connections destroyed, new ones refused) and restores. While cut, a shop
 * route, an admin route, the tracking page and the readiness probe answer problem+json 503
 * with Retry-After — promptly, never 500, never a hang; once restored, the same calls succeed.
 * (A server only: the proxy sits in front of 127.0.0.1:5432.)
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { admin, newKey, orderBody, placeOrder, seedShopWithStock, shopHeaders } from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

/** A TCP proxy on 127.0.0.1 in front of the PostgreSQL server, which the test can cut. */
class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.upstreamPort, this.upstreamHost);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Every live connection destroyed; the port closed, so a new one is refused. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
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

/** The call, or a failure if it takes longer than postgres.js's connect_timeout (5 s): a hang. */
async function promptly<T>(what: string, call: () => Promise<T>, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('PostgreSQL unreachable, then back', () => {
  let db: TestDatabase;
  let proxy: CuttableProxy;
  let proxied: Database;
  let server: TestServer;
  let apiKey: string;
  let tracking: string;

  beforeAll(async () => {
    db = await testDatabase();
    const direct = new URL(db.url!);
    proxy = new CuttableProxy(direct.hostname, Number(direct.port || 5432));
    await proxy.open();
    const through = new URL(direct);
    through.hostname = '127.0.0.1';
    through.port = String(proxy.port);
    proxied = openDatabase(through.toString(), '');
    server = await startTestServer(proxied);
    const shop = await seedShopWithStock(server.app, { warehouseId: 'wh-cut', stock: { 'MASK-N95': 100 } });
    apiKey = shop.apiKey;
    const order = await placeOrder(server.app, apiKey, orderBody());
    tracking = new URL(order.links.tracking).pathname;
  });

  afterAll(async () => {
    await server?.close();
    await proxied?.close().catch(() => undefined);
    await proxy?.cut();
    await db?.drop();
  });

  const calls = () => ({
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
  });

  it('answers problem+json 503 with Retry-After on every route while the proxy is cut', async () => {
    // Connections are live in the pool (the seeding used them): the cut resets them mid-session.
    await proxy.cut();
    for (let round = 0; round < 2; round++) {
      // Round 0 meets reset connections, round 1 refused new ones.
      for (const [what, call] of Object.entries(calls())) expectUnavailable(await promptly(what, call), what);
    }
    // Several at once, as under load, and as the outage goes on (a client backing off its
    // reconnects must not hold requests back): none hangs, none is a 500.
    for (let round = 0; round < 3; round++) {
      const concurrent = await promptly(`concurrent calls, round ${round}`, () =>
        Promise.all(Object.values(calls()).map((call) => call())),
      );
      Object.keys(calls()).forEach((what, i) => expectUnavailable(concurrent[i], `${what} (concurrent)`));
    }
  });

  it('answers the same calls again once the proxy is back', async () => {
    await proxy.open();
    await waitFor(
      async () => (await server.app.inject({ url: '/readyz' })).statusCode === 200,
      'readiness after the database came back',
    );
    const expected: Record<string, number> = {
      'GET /v1/orders': 200,
      'POST /v1/orders': 202,
      'GET /v1/admin/inventory': 200,
      'GET /v1/track/{token}': 200,
      'GET /readyz': 200,
    };
    for (const [what, call] of Object.entries(calls())) {
      const response = await promptly(what, call);
      expect(response.statusCode, `${what} → ${response.body}`).toBe(expected[what]);
    }
  });
});
