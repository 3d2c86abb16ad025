import type { Context } from '../context.js';
import type { Priority } from '../domain/priority.js';

/** How long a request waits for Redis to take a job before leaving it to the reconciler. */
const ENQUEUE_TIMEOUT_MS = 2000;

/**
 * Enqueues after a commit. A failure here is logged, not raised: the database already holds
 * the work, and the reconciler enqueues it again once Redis answers. Bounded in time, so a
 * request never hangs on a Redis that is away.
 */
export async function enqueueAfterCommit(
  ctx: Context,
  what: string,
  add: () => Promise<unknown>,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      add(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Redis did not answer within ${ENQUEUE_TIMEOUT_MS} ms`)),
          ENQUEUE_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    ctx.log.warn({ err: (error as Error).message, what }, 'enqueue failed; the reconciler will pick it up');
  } finally {
    clearTimeout(timer);
  }
}

export async function enqueueNotifications(ctx: Context, ids: string[], priority: Priority): Promise<void> {
  await Promise.all(
    ids.map((id) => enqueueAfterCommit(ctx, `notification ${id}`, () => ctx.queues.notify(id, priority))),
  );
}
