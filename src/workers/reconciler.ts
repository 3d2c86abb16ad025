import { randomUUID } from 'node:crypto';
import { and, eq, inArray, lt } from 'drizzle-orm';
import type { Job, Queue } from 'bullmq';
import type { Context } from '../context.js';
import { notifications, orders } from '../db/schema.js';
import type { Priority } from '../domain/priority.js';
import { jobIds } from '../queues/index.js';

const BATCH = 500;

/**
 * The database is the source of truth: any order waiting for a stage, and any unsent
 * notification, whose job is missing from Redis (flushed, restarted, a crash between commit and
 * enqueue) gets its job again. Runs in every worker process; a Redis lock lets one at a time work.
 */
export async function reconcileOnce(ctx: Context): Promise<number> {
  const lockKey = `${ctx.config.queuePrefix}:reconciler:lock`;
  const token = randomUUID();
  const locked = await ctx.redis.set(
    lockKey,
    token,
    'PX',
    Math.max(ctx.config.reconcileIntervalMs, 1000),
    'NX',
  );
  if (locked !== 'OK') return 0;

  const before = new Date(Date.now() - ctx.config.reconcileGraceMs);
  let requeued = 0;

  const waiting = await ctx.db
    .select({ id: orders.id, status: orders.status, attempt: orders.attempt, priority: orders.priority })
    .from(orders)
    .where(and(inArray(orders.status, ['received', 'allocated']), lt(orders.updatedAt, before)))
    .limit(BATCH);
  for (const order of waiting) {
    const priority = order.priority as Priority;
    const added =
      order.status === 'received'
        ? await ensureJob(ctx.queues.queues.allocation, jobIds.allocation(order.id, order.attempt), () =>
            ctx.queues.allocate(order.id, order.attempt, priority),
          )
        : await ensureJob(ctx.queues.queues.dispatch, jobIds.dispatch(order.id, order.attempt), () =>
            ctx.queues.dispatch(order.id, order.attempt, priority),
          );
    if (added) requeued++;
  }

  const unsent = await ctx.db
    .select({ id: notifications.id, priority: orders.priority })
    .from(notifications)
    .innerJoin(orders, eq(orders.id, notifications.orderId))
    .where(and(eq(notifications.state, 'pending'), lt(notifications.createdAt, before)))
    .limit(BATCH);
  for (const row of unsent) {
    const added = await ensureJob(ctx.queues.queues.notification, jobIds.notification(row.id), () =>
      ctx.queues.notify(row.id, row.priority as Priority),
    );
    if (added) requeued++;
  }

  if (requeued > 0) ctx.log.warn({ requeued }, 'reconciler re-enqueued work missing from Redis');
  return requeued;
}

/**
 * Adds the job when Redis has no live copy of it. A failed copy is retried; a completed one
 * whose work is still undone (it ran against an older state) is replaced.
 */
async function ensureJob(queue: Queue, jobId: string, add: () => Promise<Job>): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (job) {
    const state = await job.getState();
    if (state === 'failed') {
      await job.retry('failed');
      return true;
    }
    if (state !== 'completed' && state !== 'unknown') return false;
    await job.remove().catch(() => undefined);
  }
  await add();
  return true;
}

export function startReconciler(ctx: Context): { stop(): void } {
  const timer = setInterval(() => {
    reconcileOnce(ctx).catch((error) =>
      ctx.log.warn({ err: error }, 'reconciler pass failed; will try again'),
    );
  }, ctx.config.reconcileIntervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
