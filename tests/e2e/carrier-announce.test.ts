/**
 * A carrier registered (or changed) through the API is served by the worker processes at once:
 * the change is announced on Redis, not only picked up by the periodic read of the carriers table.
 * The periodic read is set to ten minutes here, so only the announcement can make this pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerScriptedCarrier, type ScriptedCarrier } from '../helpers/carriers.js';
import {
  createShop,
  createWarehouse,
  orderBody,
  placeOrder,
  setStock,
  storedStatus,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

describe('a carrier registered while the workers run', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: ScriptedCarrier | undefined;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { env: { CARRIER_REFRESH_MS: '600000' } });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  it('books its first parcel without waiting for the periodic read of the carriers', async () => {
    const shop = await createShop(server.app, { rateLimitPerMinute: 100_000 });
    await createWarehouse(server.app, 'wh-announce');
    await setStock(server.app, 'wh-announce', 'MASK-N95', 10);
    // Registered after the workers started: its queue has no worker until it is announced.
    carrier = await registerScriptedCarrier(server.app, { id: 'announced' }, { regions: ['*'], rank: 1 });
    const placed = await placeOrder(server.app, shop.apiKey, orderBody());
    await waitFor(
      async () => (await storedStatus(server.ctx.db, placed.id)) === 'dispatched',
      'the order to be dispatched by the new carrier',
      20_000,
    );
    expect(carrier.posts()).toHaveLength(1);
  });
});
