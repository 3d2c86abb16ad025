import type { Context } from '../context.js';
import { claimNotification, markFailed, markSent, webhookSecretOf } from '../db/outbox.js';
import { postShopWebhook } from '../integrations/notify/shop-webhook.js';
import { PermanentSendError, RetryLaterError } from '../integrations/notify/types.js';
import type { NotificationJob } from '../queues/topology.js';

const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longer than any one send: a claim outlives the call it covers. */
const LEASE_MS = 60_000;

export type NotificationOutcome =
  | 'sent'
  | 'skipped'
  | 'given_up'
  /** The provider named a time to come back (SMS 429 Retry-After): the job waits, no retry spent. */
  | { kind: 'wait'; delayMs: number };

/**
 * Sends one outbox row, rendered when its status changed: claim it (a lease, so two runs at
 * once can't both send), send, mark it sent. A failure releases the claim and throws (BullMQ
 * retries with capped backoff); on the last attempt, or when the provider refused the message for
 * good, the row is given up and logged instead. A provider asking to wait (429) releases the
 * claim and answers `wait` — until the row has been tried `notificationAttempts` times in all.
 */
export async function sendNotification(
  ctx: Context,
  job: Pick<NotificationJob, 'notificationId'>,
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
      const html = (row.body as { html?: unknown }).html;
      await ctx.notifier.send({
        channel: row.channel as 'sms' | 'email',
        to,
        subject,
        text,
        idempotencyKey,
        ...(typeof html === 'string' ? { html } : {}),
      });
    }
  } catch (error) {
    const message = (error as Error).message;
    const permanent = error instanceof PermanentSendError;
    const waitMs = error instanceof RetryLaterError ? error.delayMs : undefined;
    const giveUp =
      permanent || finalAttempt || (waitMs !== undefined && row.tries >= ctx.config.notificationAttempts);
    await markFailed(ctx.db, row.id, message, giveUp);
    if (giveUp) {
      // The channel, status and answer; never the recipient or the text.
      ctx.log.error(
        {
          orderId: row.orderId,
          channel: row.channel,
          status: row.status,
          err: message,
          ...(permanent ? error.detail : {}),
          tries: row.tries,
        },
        permanent ? 'notification refused by the provider; given up' : 'notification given up',
      );
      return 'given_up';
    }
    if (waitMs !== undefined) return { kind: 'wait', delayMs: waitMs };
    throw error;
  }
  await markSent(ctx.db, row.id);
  return 'sent';
}
