import type { Context } from '../context.js';
import type { Priority } from '../domain/priority.js';

/**
 * Enqueues after a commit. A failure here is logged, not raised: the database already holds
 * the work, and the reconciler enqueues it again once Redis answers.
 */
export async function enqueueAfterCommit(ctx: Context, what: string, add: () => Promise<unknown>): Promise<void> {
  try {
    await add();
  } catch (error) {
    ctx.log.warn({ err: error, what }, 'enqueue failed; the reconciler will pick it up');
  }
}

export async function enqueueNotifications(ctx: Context, ids: string[], priority: Priority): Promise<void> {
  await Promise.all(ids.map((id) => enqueueAfterCommit(ctx, `notification ${id}`, () => ctx.queues.notify(id, priority))));
}
