import type { Context } from '../context.js';
import {
  claimNotifications,
  markFailed,
  markSentMany,
  webhookSecretOf,
  type NotificationRow,
} from '../db/outbox.js';
import { createGatherer, type Gatherer } from './gather.js';
import { postShopWebhook } from '../integrations/notify/shop-webhook.js';
import { PermanentSendError, RetryLaterError } from '../integrations/notify/types.js';
import type { NotificationJob } from '../queues/topology.js';

const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longer than any one send: a claim outlives the call it covers. */
const LEASE_MS = 60_000;

/**
 * Messages sent at once by one process's channel workers claim their rows, and mark them sent, in
 * one statement per gathering instead of one each (two per message were the notification stage's
 * whole cost in bench/cost.ts). A row's claim still belongs to one run only.
 */
const GATHER = { maxWaitMs: 2, maxSize: 50 };

interface OutboxBatches {
  claim: Gatherer<string, NotificationRow | null>;
  sent: Gatherer<string, void>;
}

const batches = new WeakMap<Context, OutboxBatches>();

function outboxBatches(ctx: Context): OutboxBatches {
  let kept = batches.get(ctx);
  if (!kept) {
    kept = {
      claim: createGatherer(GATHER, async (ids) => {
        const rows = await claimNotifications(ctx.db, ids, LEASE_MS);
        const given = new Set<string>();
        // The same row asked for twice in one gathering: the first run has it, the other none.
        return ids.map((id) => {
          const row = given.has(id) ? undefined : rows.get(id);
          given.add(id);
          return { ok: true as const, value: row ?? null };
        });
      }),
      sent: createGatherer(GATHER, async (ids) => {
        await markSentMany(ctx.db, ids);
        return ids.map(() => ({ ok: true as const, value: undefined }));
      }),
    };
    batches.set(ctx, kept);
  }
  return kept;
}

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
  const outbox = outboxBatches(ctx);
  const row = await outbox.claim.submit(job.notificationId);
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
  await outbox.sent.submit(row.id);
  return 'sent';
}
