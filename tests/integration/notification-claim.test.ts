/**
 * "Exactly one message is accepted by the provider per (order, status, channel) — however often a
 * stage runs" (contract, Customer messages): a send claims its outbox row with a lease
 * (src/db/outbox.ts claimNotification) before it calls the provider, so two runs of one
 * notification at once — a lapsed job lock, the reconciler re-adding a job after a flush — can't
 * both send, and a run that died after claiming does not block the row for ever.
 *
 * The process runs as `api` only: no worker takes the notification jobs the API enqueues, so
 * every send below is one this test asked for. The provider is the engine's own adapter
 * interface, implemented here: it records each accepted message and takes 500 ms to accept.
 */
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.js';
import { claimNotification } from '../../src/db/outbox.js';
import { notifications } from '../../src/db/schema.js';
import { type CustomerMessage, type NotificationProvider } from '../../src/integrations/notify/types.js';
import { sendNotification } from '../../src/steps/notify.js';
import { orderBody, placeOrder, seedShopWithStock } from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';

const SEND_MS = 500;

/** A provider that takes SEND_MS to accept a message; `failures` makes the next sends fail. */
class SlowProvider implements NotificationProvider {
  readonly name = 'slow-test-provider';
  /** Messages the provider accepted. */
  readonly accepted: CustomerMessage[] = [];
  /** Every call, accepted or not. */
  calls = 0;
  failures = 0;

  async send(message: CustomerMessage): Promise<void> {
    this.calls++;
    await new Promise((resolve) => setTimeout(resolve, SEND_MS));
    if (this.failures > 0) {
      this.failures--;
      throw new Error('provider answered 503');
    }
    this.accepted.push(message);
  }

  acceptedFor(idempotencyKey: string): number {
    return this.accepted.filter((m) => m.idempotencyKey === idempotencyKey).length;
  }
}

describe('a notification is claimed before it is sent', () => {
  let db: TestDatabase;
  let server: TestServer;
  let ctx: Context;
  let shop: { apiKey: string };
  const provider = new SlowProvider();

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api', overrides: { notifier: provider } });
    ctx = server.ctx;
    shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-notify',
      stock: { 'MASK-N95': 100 },
    });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  beforeEach(() => {
    provider.failures = 0;
  });

  /** A fresh order's `received` SMS outbox row (no worker will send it). */
  async function freshSmsRow() {
    const { id: orderId } = await placeOrder(server.app, shop.apiKey, orderBody());
    const [row] = await ctx.db
      .select()
      .from(notifications)
      .where(and(eq(notifications.orderId, orderId), eq(notifications.channel, 'sms')));
    expect(row, 'the received SMS outbox row').toBeDefined();
    expect(row.state).toBe('pending');
    if (row.body.kind !== 'customer') throw new Error('an SMS row holds a customer message');
    return { id: row.id, key: row.body.idempotencyKey };
  }

  async function stored(id: string) {
    const [row] = await ctx.db.select().from(notifications).where(eq(notifications.id, id));
    return row;
  }

  it('two runs at once send it once; a run after it was sent sends nothing', async () => {
    const row = await freshSmsRow();
    const callsBefore = provider.calls;

    const outcomes = await Promise.all([
      sendNotification(ctx, { notificationId: row.id }, false),
      sendNotification(ctx, { notificationId: row.id }, false),
    ]);
    expect(outcomes.sort()).toEqual(['sent', 'skipped']);
    expect(provider.calls - callsBefore).toBe(1); // the loser never reached the provider
    expect(provider.acceptedFor(row.key)).toBe(1);
    expect(await stored(row.id)).toMatchObject({ state: 'sent', leaseUntil: null, tries: 1 });

    expect(await sendNotification(ctx, { notificationId: row.id }, false)).toBe('skipped');
    expect(provider.calls - callsBefore).toBe(1);
    expect(provider.acceptedFor(row.key)).toBe(1);
  });

  it('a failed send releases its claim, so the next try sends', async () => {
    const row = await freshSmsRow();
    provider.failures = 1;

    await expect(sendNotification(ctx, { notificationId: row.id }, false)).rejects.toThrow(
      'provider answered 503',
    );
    const failed = await stored(row.id);
    expect(failed).toMatchObject({ state: 'pending', leaseUntil: null, tries: 1 });
    expect(failed.lastError).toContain('503');
    expect(provider.acceptedFor(row.key)).toBe(0);

    // The retry right away (no lease to wait out) is the one that sends.
    expect(await sendNotification(ctx, { notificationId: row.id }, false)).toBe('sent');
    expect(provider.acceptedFor(row.key)).toBe(1);
    expect(await stored(row.id)).toMatchObject({ state: 'sent', leaseUntil: null, tries: 2 });
  });

  it('a failure on the last attempt gives the row up: it is never sent afterwards', async () => {
    const row = await freshSmsRow();
    provider.failures = 1;

    expect(await sendNotification(ctx, { notificationId: row.id }, true)).toBe('given_up');
    expect(await stored(row.id)).toMatchObject({ state: 'failed', leaseUntil: null });
    expect(await sendNotification(ctx, { notificationId: row.id }, false)).toBe('skipped');
    expect(provider.acceptedFor(row.key)).toBe(0);
  });

  it('a claim whose run died is not sent again until its lease passes, then it is, once', async () => {
    const row = await freshSmsRow();
    // A run claimed the row and died before sending or marking it (SIGKILL, lost job lock).
    const claimed = await claimNotification(ctx.db, row.id, 60_000);
    expect(claimed?.id).toBe(row.id);
    const callsBefore = provider.calls;

    expect(await sendNotification(ctx, { notificationId: row.id }, false)).toBe('skipped');
    expect(provider.calls - callsBefore).toBe(0);
    expect((await stored(row.id)).state).toBe('pending');

    // The dead run's lease runs out.
    await ctx.db
      .update(notifications)
      .set({ leaseUntil: sql`now() - interval '1 second'` })
      .where(eq(notifications.id, row.id));

    const outcomes = await Promise.all([
      sendNotification(ctx, { notificationId: row.id }, false),
      sendNotification(ctx, { notificationId: row.id }, false),
    ]);
    expect(outcomes.sort()).toEqual(['sent', 'skipped']);
    expect(provider.acceptedFor(row.key)).toBe(1);
    expect(await stored(row.id)).toMatchObject({ state: 'sent', leaseUntil: null, tries: 2 });
  });
});
