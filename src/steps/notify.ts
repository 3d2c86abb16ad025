import type { Context } from '../context.js';
import { claimNotification, markFailed, markSent, webhookSecretOf } from '../db/outbox.js';
import { postShopWebhook } from '../integrations/notify/shop-webhook.js';
import type { NotificationJob } from '../queues/topology.js';

const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longer than any one send: a claim outlives the call it covers. */
const LEASE_MS = 60_000;

export type NotificationOutcome = 'sent' | 'skipped' | 'given_up';

/**
 * Sends one outbox row, rendered when its status changed: claim it (a lease, so two runs at
 * once can't both send), send, mark it sent. A failure releases the claim and throws (BullMQ
 * retries with capped backoff); on the last attempt the row is given up and logged instead.
 */
export async function sendNotification(
  ctx: Context,
  job: NotificationJob,
  finalAttempt: boolean,
): Promise<NotificationOutcome> {
  const row = await claimNotification(ctx.db, job.notificationId, LEASE_MS);
  if (!row) return 'skipped';
  try {
    if (row.body.kind === 'webhook') {
      const secret = await webhookSecretOf(ctx.db, row.orderId);
      if (!secret) throw new Error('shop not found');
      await postShopWebhook(row.body.url, secret, row.body.event, WEBHOOK_TIMEOUT_MS);
    } else {
      const { to, subject, text, idempotencyKey } = row.body;
      await ctx.notifier.send({ channel: row.channel as 'sms' | 'email', to, subject, text, idempotencyKey });
    }
  } catch (error) {
    const message = (error as Error).message;
    await markFailed(ctx.db, row.id, message, finalAttempt);
    if (finalAttempt) {
      ctx.log.error(
        { orderId: row.orderId, channel: row.channel, status: row.status, err: message },
        'notification given up',
      );
      return 'given_up';
    }
    throw error;
  }
  await markSent(ctx.db, row.id);
  return 'sent';
}
