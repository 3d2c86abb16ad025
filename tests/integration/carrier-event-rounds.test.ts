/**
 * Delivery rounds ("Carriers" and "Customer messages" in the contract): a second
 * `out_for_delivery` or `failed_attempt` of a parcel with another `at` — the next day's round — is
 * a new timeline event told like the first, its outbox rows written as `{status}#{n}` (so the
 * provider's dedupe key `{orderId}:{status}#{n}:{channel}` lets it through) while the shop's
 * webhook says the plain status; a repeat with the same `at` changes nothing and is answered 2xx.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifications, orderEvents } from '../../src/db/schema.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import type { CustomerMessage, NotificationProvider } from '../../src/integrations/notify/types.js';
import {
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
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

const SECRET = 'rounds-carrier-secret';
const HOUR = 3_600_000;

describe('repeated delivery rounds', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let shop: { apiKey: string };
  const sent: CustomerMessage[] = [];
  const capture: NotificationProvider = {
    name: 'capture',
    async send(message) {
      sent.push(message);
    },
  };

  let orderId: string;
  let trackingNumber: string;
  const base = Date.now() + HOUR;
  const round1 = { out: new Date(base).toISOString(), failed: new Date(base + 60_000).toISOString() };
  const round2 = {
    out: new Date(base + 24 * HOUR).toISOString(),
    failed: new Date(base + 24 * HOUR + 60_000).toISOString(),
  };

  beforeAll(async () => {
    db = await testDatabase();
    receiver = await startReceiver();
    server = await startTestServer(db.database, { overrides: { notifier: capture } });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'rounds-carrier',
      webhookSecret: SECRET,
      eventsBaseUrl: server.url,
      progress: false,
    });
    shop = await seedShopWithStock(server.app, {
      warehouseId: 'wh-rounds',
      stock: { 'MASK-N95': 10 },
      shop: { webhookUrl: receiver.url },
    });
    orderId = (
      await placeOrder(server.app, shop.apiKey, orderBody({ notify: { channels: ['sms', 'email'] } }))
    ).id;
    const order = await waitForOrderStatus(server.app, shop.apiKey, orderId, 'dispatched');
    trackingNumber = order.shipments[0].trackingNumber;
    expect2xx(await carrier.sendEvent(trackingNumber, 'in_transit', new Date(base - HOUR).toISOString()));
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await receiver?.close();
    await db?.drop();
  });

  function expect2xx(status: number) {
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(300);
  }

  const timeline = async (status: string) =>
    ((await getOrder(server.app, shop.apiKey, orderId)).events as { status: string; at: string }[])
      .filter((e) => e.status === status)
      .map((e) => e.at);

  const outbox = () =>
    db.database.db
      .select({ status: notifications.status, channel: notifications.channel, state: notifications.state })
      .from(notifications)
      .where(eq(notifications.orderId, orderId));

  const webhooksFor = (status: string) =>
    receiver.received
      .filter((r) => r.json.orderId === orderId && r.json.status === status)
      .map((r) => r.json.at);

  const keys = () => sent.map((m) => m.idempotencyKey).filter((k) => k.startsWith(`${orderId}:`));

  /** Every outbox row of the order has been sent (the workers are idle for it). */
  const allSent = () =>
    waitFor(async () => {
      const rows = await outbox();
      return rows.length > 0 && rows.every((r) => r.state === 'sent');
    }, 'every outbox row of the order to be sent');

  it('tells the first round once, as the plain status', async () => {
    expect2xx(await carrier.sendEvent(trackingNumber, 'out_for_delivery', round1.out));
    expect2xx(await carrier.sendEvent(trackingNumber, 'failed_attempt', round1.failed));
    expect(await timeline('out_for_delivery')).toEqual([round1.out]);
    expect(await timeline('failed_attempt')).toEqual([round1.failed]);
    await allSent();
    expect(keys()).toContain(`${orderId}:failed_attempt:sms`);
    expect(keys()).toContain(`${orderId}:failed_attempt:email`);
    expect(keys()).toContain(`${orderId}:out_for_delivery:sms`);
    await waitFor(async () => webhooksFor('failed_attempt').length === 1, 'the failed_attempt webhook');
  });

  it('records a second failed_attempt and out_for_delivery with another `at` as new events, told as {status}#2', async () => {
    expect2xx(await carrier.sendEvent(trackingNumber, 'out_for_delivery', round2.out));
    expect2xx(await carrier.sendEvent(trackingNumber, 'failed_attempt', round2.failed));

    const order = await getOrder(server.app, shop.apiKey, orderId);
    expect(order.status).toBe('in_transit');
    expect(await timeline('out_for_delivery')).toEqual([round1.out, round2.out]);
    expect(await timeline('failed_attempt')).toEqual([round1.failed, round2.failed]);

    const events = await db.database.db
      .select({ seq: orderEvents.seq, at: orderEvents.at })
      .from(orderEvents)
      .where(and(eq(orderEvents.orderId, orderId), eq(orderEvents.status, 'failed_attempt')));
    expect(events.map((e) => [e.seq, e.at.toISOString()]).sort()).toEqual([
      [1, round1.failed],
      [2, round2.failed],
    ]);

    const rows = await outbox();
    for (const status of ['failed_attempt#2', 'out_for_delivery#2']) {
      expect(
        rows
          .filter((r) => r.status === status)
          .map((r) => r.channel)
          .sort(),
        status,
      ).toEqual(['email', 'sms', 'webhook']);
    }

    await allSent();
    for (const key of [
      `${orderId}:failed_attempt#2:sms`,
      `${orderId}:failed_attempt#2:email`,
      `${orderId}:out_for_delivery#2:sms`,
      `${orderId}:out_for_delivery#2:email`,
    ])
      expect(keys()).toContain(key);
    // Each key is sent once.
    expect(new Set(keys()).size).toBe(keys().length);

    // The shop hears the plain status twice, each with its round's time.
    await waitFor(
      async () => webhooksFor('failed_attempt').length === 2 && webhooksFor('out_for_delivery').length === 2,
      'the second round webhooks',
    );
    expect(webhooksFor('failed_attempt').sort()).toEqual([round1.failed, round2.failed]);
    expect(webhooksFor('out_for_delivery').sort()).toEqual([round1.out, round2.out]);
    expect(receiver.received.some((r) => String(r.json.status).includes('#'))).toBe(false);
  });

  it('changes nothing on a repeat with the same `at`, sequential or all at once, and answers 2xx', async () => {
    const eventsBefore = (await getOrder(server.app, shop.apiKey, orderId)).events.length;
    const rowsBefore = (await outbox()).length;
    const sentBefore = keys().length;

    expect2xx(await carrier.sendEvent(trackingNumber, 'failed_attempt', round1.failed));
    expect2xx(await carrier.sendEvent(trackingNumber, 'out_for_delivery', round1.out));
    const answers = await Promise.all([
      ...Array.from({ length: 4 }, () => carrier.sendEvent(trackingNumber, 'failed_attempt', round2.failed)),
      ...Array.from({ length: 4 }, () => carrier.sendEvent(trackingNumber, 'out_for_delivery', round2.out)),
    ]);
    for (const status of answers) expect2xx(status);

    expect((await getOrder(server.app, shop.apiKey, orderId)).events.length).toBe(eventsBefore);
    expect(await timeline('failed_attempt')).toEqual([round1.failed, round2.failed]);
    expect((await outbox()).length).toBe(rowsBefore);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(keys().length).toBe(sentBefore);
  });

  it('counts on: a third round is {status}#3, even when its events arrive at once', async () => {
    const round3 = new Date(base + 48 * HOUR).toISOString();
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => carrier.sendEvent(trackingNumber, 'failed_attempt', round3)),
    );
    for (const status of answers) expect2xx(status);
    expect(await timeline('failed_attempt')).toEqual([round1.failed, round2.failed, round3]);
    const rows = await outbox();
    expect(rows.filter((r) => r.status === 'failed_attempt#3')).toHaveLength(3);
    expect(rows.filter((r) => r.status.startsWith('failed_attempt#4'))).toHaveLength(0);
    await allSent();
    expect(keys()).toContain(`${orderId}:failed_attempt#3:sms`);
  });
});
