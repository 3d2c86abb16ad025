/**
 * Delay notices ("Customer messages" in the contract: a promise that can no longer be kept is
 * told at once): a carrier booking whose estimatedDeliveryAt is later than the order's promise
 * writes one `delayed` outbox row per customer channel, with the carrier's estimate, in the
 * booking's transaction — once, however often the step runs — and no shop webhook, no status,
 * no timeline event (a notice, not a status change). A booking within the promise writes none.
 */
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDelayNotice } from '../../src/db/notices.js';
import { notifications } from '../../src/db/schema.js';
import { bookCall } from '../../src/steps/dispatch.js';
import { registerScriptedCarrier, type ScriptedCarrier } from '../helpers/carriers.js';
import {
  createWarehouse,
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  setStock,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { startReceiver } from '../helpers/receiver.js';

const LATE_REGION = 'shanghai-pudong'; // late-carrier: promises 2 h, answers an estimate 24 h out
const ON_TIME_REGION = 'beijing-chaoyang'; // on-time-carrier: promises 48 h, answers 24 h out

describe('delay notice when the carrier’s estimate breaks the promise', () => {
  let db: TestDatabase;
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let late: ScriptedCarrier;
  let onTime: ScriptedCarrier;
  let shop: { apiKey: string };
  let lateOrder: {
    id: string;
    promisedBy: string;
    status: string;
    events: { status: string }[];
    shipments: { id: string; estimatedDeliveryAt: string; carrierId: string }[];
  };

  const delayedRows = (orderId: string) =>
    db.database.db
      .select()
      .from(notifications)
      .where(and(eq(notifications.orderId, orderId), like(notifications.status, 'delayed%')));

  beforeAll(async () => {
    db = await testDatabase();
    receiver = await startReceiver();
    server = await startTestServer(db.database);
    late = await registerScriptedCarrier(
      server.app,
      { id: 'late-carrier' },
      { regions: [LATE_REGION], transitHours: 2 },
    );
    onTime = await registerScriptedCarrier(
      server.app,
      { id: 'on-time-carrier' },
      { regions: [ON_TIME_REGION], transitHours: 48 },
    );
    shop = await seedShopWithStock(server.app, {
      warehouseId: 'wh-delay-sh',
      stock: { 'MASK-N95': 20 },
      shop: { webhookUrl: receiver.url },
    });
    await createWarehouse(server.app, 'wh-delay-bj', ON_TIME_REGION);
    await setStock(server.app, 'wh-delay-bj', 'MASK-N95', 20);
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ locale: 'en', contactless: true, notify: { channels: ['sms', 'email'] } }),
    );
    lateOrder = await waitForOrderStatus(server.app, shop.apiKey, placed.id, 'dispatched');
  });

  afterAll(async () => {
    await late?.close();
    await onTime?.close();
    await server?.close();
    await receiver?.close();
    await db?.drop();
  });

  it('writes exactly one delayed row per customer channel, with the carrier’s estimate', async () => {
    const [parcel] = lateOrder.shipments;
    expect(parcel.carrierId).toBe('late-carrier');
    expect(new Date(parcel.estimatedDeliveryAt).getTime()).toBeGreaterThan(
      new Date(lateOrder.promisedBy).getTime(),
    );
    const rows = await delayedRows(lateOrder.id);
    expect(rows.map((r) => `${r.status}:${r.channel}`).sort()).toEqual(['delayed:email', 'delayed:sms']);
    for (const row of rows) {
      expect(row.body.kind).toBe('customer');
      if (row.body.kind !== 'customer') continue;
      expect(row.body.idempotencyKey).toBe(`${lateOrder.id}:delayed:${row.channel}`);
      expect(row.body.text).toContain(parcel.estimatedDeliveryAt);
      expect(row.body.text).toContain(lateOrder.promisedBy);
      expect(row.body.text).toContain('is delayed');
      expect(row.body.text).toMatch(/Contactless/);
      expect(row.body.text).toContain('/v1/track/');
      if (row.channel === 'email') expect(row.body.html).toContain(parcel.estimatedDeliveryAt);
      else expect(row.body.html).toBeUndefined();
    }
  });

  it('is a message only: no shop webhook row, no timeline event, the status unchanged', async () => {
    const webhook = await db.database.db
      .select()
      .from(notifications)
      .where(and(eq(notifications.orderId, lateOrder.id), eq(notifications.channel, 'webhook')));
    expect(webhook.map((r) => r.status)).not.toContain('delayed');
    const order = await getOrder(server.app, shop.apiKey, lateOrder.id);
    expect(order.events.map((e: { status: string }) => e.status)).not.toContain('delayed');
    expect(order.status).toBe('dispatched');
  });

  it('a second run of the step writes none', async () => {
    const before = await delayedRows(lateOrder.id);
    const [parcel] = lateOrder.shipments;
    // The booking job again: the parcel is booked, so it is skipped and writes nothing.
    const again = await bookCall(server.ctx, {
      orderId: lateOrder.id,
      attempt: 1,
      shipmentId: parcel.id,
      carrierId: 'late-carrier',
      call: 1,
    });
    expect(again.kind).toBe('skipped');
    // The notice itself again, as if the booking were recorded twice: the unique key holds.
    const written = await db.database.db.transaction((tx) =>
      writeDelayNotice(
        tx,
        { id: parcel.id, orderId: lateOrder.id, attempt: 1 },
        new Date(parcel.estimatedDeliveryAt),
        server.config,
      ),
    );
    expect(written).toEqual([]);
    const after = await delayedRows(lateOrder.id);
    expect(after.map((r) => r.id).sort()).toEqual(before.map((r) => r.id).sort());
    expect(late.posts(parcel.id)).toHaveLength(1);
  });

  it('a booking within the promise tells no delay', async () => {
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({
        shippingAddress: { ...orderBody().shippingAddress, region: ON_TIME_REGION },
        notify: { channels: ['sms', 'email'] },
      }),
    );
    const order = await waitForOrderStatus(server.app, shop.apiKey, placed.id, 'dispatched');
    expect(order.shipments[0].carrierId).toBe('on-time-carrier');
    expect(new Date(order.shipments[0].estimatedDeliveryAt).getTime()).toBeLessThan(
      new Date(order.promisedBy).getTime(),
    );
    expect(await delayedRows(placed.id)).toEqual([]);
  });
});
