import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
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
import { startReceiver } from '../helpers/receiver.js';

const SECRET = 'carrier-secret-123';

describe('an order travels the whole pipeline', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let shop: { id: string; apiKey: string; webhookSecret: string };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    receiver = await startReceiver();
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'sim-express',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: server.url,
      progress: { inTransitAfterMs: 300, deliveredAfterMs: 600 },
    });
    shop = await seedShopWithStock(server.app, {
      shop: { webhookUrl: receiver.url },
      warehouseId: 'wh-pudong',
      stock: { 'MASK-N95': 10 },
    });
  });

  afterAll(async () => {
    await carrier?.close();
    await receiver?.close();
    await server?.close();
    await db?.drop();
  });

  it('goes received → allocated → dispatched → in_transit → delivered, with signed webhooks', async () => {
    const posted = await fetch(`${server.url}/v1/orders`, {
      method: 'POST',
      headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
      body: JSON.stringify(orderBody({ priority: 'essential' })),
    });
    expect(posted.status).toBe(202);
    const accepted = (await posted.json()) as { id: string; status: string };
    expect(accepted.status).toBe('received');

    const delivered = await waitForOrderStatus(server.app, shop.apiKey, accepted.id, 'delivered');

    expect(delivered.events.map((e: { status: string }) => e.status)).toEqual([
      'received',
      'allocated',
      'dispatched',
      'in_transit',
      'delivered',
    ]);
    expect(delivered.shipments).toHaveLength(1);
    expect(delivered.shipments[0]).toMatchObject({ carrierId: 'sim-express', status: 'delivered' });
    expect(delivered.deliveredAt).toMatch(/Z$/);
    expect(carrier.bookings.size).toBe(1);
    expect([...carrier.bookings.values()][0].reference).toBe(delivered.shipments[0].id);

    // Stock left the shelf once: on hand 10 - 2, nothing still reserved.
    const stock = await server.app.inject({ url: '/v1/admin/inventory?sku=MASK-N95', headers: server.admin });
    expect(stock.json().items[0]).toMatchObject({ onHand: 8, reserved: 0, available: 8 });

    const hooks = await waitFor(async () => {
      const mine = receiver.received.filter((r) => r.json.orderId === accepted.id);
      return mine.length >= 5 ? mine : undefined;
    }, 'five webhooks');
    expect(new Set(hooks.map((h) => h.json.status))).toEqual(
      new Set(['received', 'allocated', 'dispatched', 'in_transit', 'delivered']),
    );
    for (const hook of hooks) {
      const [t, v1] = String(hook.headers['x-surgeline-signature']).split(',');
      const timestamp = t.replace('t=', '');
      const expected = createHmac('sha256', shop.webhookSecret)
        .update(`${timestamp}.${hook.body}`)
        .digest('hex');
      expect(v1).toBe(`v1=${expected}`);
      expect(hook.json.type).toBe('order.status_changed');
    }
  });
});
