import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  allStoredWithStatus,
  getOrder,
  newKey,
  orderBody,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
  storedStatus,
} from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  REDIS_URL,
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { exitWithin, freePort, killAll, spawnSurgeline } from '../helpers/worker-process.js';

const SECRET = 'carrier-secret-123';
const SHUTDOWN_TIMEOUT_MS = 5000;

describe('SIGTERM', () => {
  let db: TestDatabase;
  /** An API in the test process: fixtures, reads, and the carrier's events (it shares the database). */
  let api: TestServer;
  let later: TestServer | undefined;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    api = await startTestServer(db.database, { role: 'api', env: { DATABASE_URL: db.url! } });
    carrier = await startSimulatedCarrier(api.app, {
      carrierId: 'sim-term',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: api.url,
      latencyMs: 1000, // a booking is in flight when the signal lands
      progress: { inTransitAfterMs: 2500, deliveredAfterMs: 3000 },
    });
    shop = await seedShopWithStock(api.app, { warehouseId: 'wh-term', stock: { 'MASK-N95': 50 } });
  });

  afterAll(async () => {
    await killAll();
    await carrier?.close();
    await later?.close(); // before api: both patched the shared database's close()
    await api?.close();
    await db?.drop();
  });

  it('stops cleanly with exit 0, and the orders it accepted are finished by the next process', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const prefix = api.config.queuePrefix;
    const process1 = spawnSurgeline('all', {
      DATABASE_URL: db.url!,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ADMIN_TOKEN,
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    await waitFor(
      async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200,
      `/healthz of the spawned process (output: ${process1.output()})`,
      30_000,
    );
    // Workers start once its start-up migrations ran: ready when /readyz says so.
    await waitFor(
      async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
      '/readyz',
      30_000,
    );

    // The first order is well under way (its booking in flight); the others are accepted just before the signal.
    const place = async () => {
      const response = await fetch(`${url}/v1/orders`, {
        method: 'POST',
        headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
        body: JSON.stringify(orderBody()),
      });
      expect(response.status).toBe(202);
      return ((await response.json()) as { id: string }).id;
    };
    const ids = [await place()];
    await waitFor(async () => carrier.stats.calls >= 1, 'the first booking call', 20_000);
    ids.push(...(await Promise.all([place(), place(), place()])));

    process1.kill('SIGTERM');
    const exit = await exitWithin(process1, SHUTDOWN_TIMEOUT_MS + 10_000);
    expect(exit, process1.output()).toEqual({ code: 0, signal: null });
    expect(process1.output()).not.toMatch(/shutdown timeout reached/);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow(); // nothing listens any more
    // The booking in flight at the signal was finished, not dropped: the first order left as dispatched.
    expect(['dispatched', 'in_transit', 'delivered']).toContain(await storedStatus(db.database.db, ids[0]));

    // Nothing was lost: a process started afterwards, on the same database and prefix, finishes every order.
    later = await startTestServer(db.database, {
      role: 'worker',
      env: { DATABASE_URL: db.url!, QUEUE_PREFIX: prefix },
    });
    await waitFor(
      () => allStoredWithStatus(db.database.db, ids, 'delivered'),
      'every order to be delivered',
      25_000,
    );
    for (const id of ids) {
      const order = await getOrder(api.app, shop.apiKey, id);
      expect(order.events.map((e: { status: string }) => e.status)).toEqual([
        'received',
        'allocated',
        'dispatched',
        'in_transit',
        'delivered',
      ]);
      expect(carrier.bookings.get(order.shipments[0].id)?.cancelled).toBe(false);
    }
    expect(carrier.bookings.size).toBe(ids.length);
    expect(carrier.stats.booked).toBe(ids.length);
  });
});
