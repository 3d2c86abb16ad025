import { and, eq, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { findOrder, type OrderRow } from '../db/orders.js';
import { notifications, shops } from '../db/schema.js';
import { customerMessage } from '../integrations/notify/messages.js';
import { postShopWebhook } from '../integrations/notify/shop-webhook.js';
import type { CustomerMessage } from '../integrations/notify/types.js';
import type { NotificationJob } from '../queues/index.js';

type NotificationRow = typeof notifications.$inferSelect;

const WEBHOOK_TIMEOUT_MS = 10_000;

export type NotificationOutcome = 'sent' | 'skipped' | 'given_up';

/**
 * Sends one outbox row: the shop webhook or a customer message. A row already sent is skipped,
 * so a job that runs twice sends once. A failure throws (BullMQ retries with capped backoff);
 * on the last attempt the row is marked failed and logged instead.
 */
export async function sendNotification(
  ctx: Context,
  job: NotificationJob,
  finalAttempt: boolean,
): Promise<NotificationOutcome> {
  const [row] = await ctx.db.select().from(notifications).where(eq(notifications.id, job.notificationId));
  if (!row || row.state !== 'pending') return 'skipped';
  const order = await findOrder(ctx.db, row.orderId);
  if (!order) return 'skipped';

  let body: Record<string, unknown>;
  try {
    body =
      row.channel === 'webhook'
        ? await sendWebhook(ctx, order, row)
        : await sendCustomerMessage(ctx, order, row);
  } catch (error) {
    const message = (error as Error).message;
    await ctx.db
      .update(notifications)
      .set({
        tries: sql`${notifications.tries} + 1`,
        lastError: message,
        state: finalAttempt ? 'failed' : 'pending',
      })
      .where(eq(notifications.id, row.id));
    if (finalAttempt) {
      ctx.log.error(
        { orderId: order.id, channel: row.channel, status: row.status, err: message },
        'notification given up',
      );
      return 'given_up';
    }
    throw error;
  }
  await ctx.db
    .update(notifications)
    .set({ state: 'sent', sentAt: new Date(), tries: sql`${notifications.tries} + 1`, lastError: null, body })
    .where(and(eq(notifications.id, row.id), eq(notifications.state, 'pending')));
  return 'sent';
}

async function sendWebhook(
  ctx: Context,
  order: OrderRow,
  row: NotificationRow,
): Promise<Record<string, unknown>> {
  const [shop] = await ctx.db.select().from(shops).where(eq(shops.id, order.shopId));
  if (!shop?.webhookUrl) return { skipped: 'shop has no webhookUrl' };
  const event = {
    type: 'order.status_changed' as const,
    orderId: order.id,
    externalId: order.externalId,
    status: row.status,
    at: row.at.toISOString(),
  };
  await postShopWebhook(shop.webhookUrl, shop.webhookSecret, event, WEBHOOK_TIMEOUT_MS);
  return event;
}

async function sendCustomerMessage(
  ctx: Context,
  order: OrderRow,
  row: NotificationRow,
): Promise<Record<string, unknown>> {
  const channel = row.channel as 'sms' | 'email';
  const to = channel === 'sms' ? order.customer.phone : order.customer.email;
  if (!to) return { skipped: `customer has no ${channel} contact` };
  const { subject, text } = customerMessage({
    externalId: order.externalId,
    status: row.status,
    locale: order.locale,
    promisedBy: order.promisedBy,
    trackingUrl: `${ctx.config.publicUrl}/v1/track/${order.trackingToken}`,
    contactless: order.contactless,
  });
  const key =
    row.attempt > 1
      ? `${order.id}:${row.attempt}:${row.status}:${channel}`
      : `${order.id}:${row.status}:${channel}`;
  const message: CustomerMessage = { channel, to, subject, text, idempotencyKey: key };
  await ctx.notifier.send(message);
  return { provider: ctx.notifier.name, to, subject, text, idempotencyKey: key };
}
