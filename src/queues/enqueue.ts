import type { Context } from '../context.js';
import type { Priority } from '../domain/priority.js';
import type { NotificationJob } from './topology.js';

/** How long a request waits for Redis to take a job before leaving it to the reconciler. */
export const ENQUEUE_TIMEOUT_MS = 2000;

/**
 * Enqueues after a commit. A failure here is logged, not raised: the database already holds
 * the work, and the reconciler enqueues it again once Redis answers. Bounded in time, so a
 * request never hangs on a Redis that is away; `deadline` (epoch ms) bounds a whole request
 * that enqueues many times (a batch): past it, the rest is left to the reconciler at once.
 */
export async function enqueueAfterCommit(
  ctx: Context,
  what: string,
  add: () => Promise<unknown>,
  deadline = Date.now() + ENQUEUE_TIMEOUT_MS,
): Promise<void> {
  const budget = Math.min(ENQUEUE_TIMEOUT_MS, deadline - Date.now());
  if (budget <= 0) {
    ctx.log.debug({ what }, 'enqueue deadline passed; the reconciler will pick it up');
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      add(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer within ${budget} ms`)), budget);
      }),
    ]);
  } catch (error) {
    ctx.log.warn({ err: (error as Error).message, what }, 'enqueue failed; the reconciler will pick it up');
  } finally {
    clearTimeout(timer);
  }
}

/** The outbox rows of one commit, each to its channel's queue, in one round trip per channel. */
export async function enqueueNotifications(
  ctx: Context,
  rows: NotificationJob[],
  priority: Priority,
  deadline?: number,
): Promise<void> {
  if (rows.length === 0) return;
  const jobs = rows.map(({ notificationId, channel }) => ({ data: { notificationId, channel }, priority }));
  await enqueueAfterCommit(
    ctx,
    `${rows.length} notification(s)`,
    () => ctx.queues.addBulk('notification', jobs),
    deadline,
  );
}
