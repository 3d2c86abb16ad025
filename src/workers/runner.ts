import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Context } from '../context.js';
import type { Metrics } from '../metrics.js';
import type { QueueName } from '../queues/topology.js';
import { allocate } from '../steps/allocate.js';
import { cancelBooking } from '../steps/cancel-booking.js';
import { dispatch } from '../steps/dispatch.js';
import { sendNotification } from '../steps/notify.js';
import { cappedBackoff } from './backoff.js';
import { startReconciler } from './reconciler.js';

/** True when this run is the job's last chance: the stage then ends the work instead of throwing. */
function isFinalAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** A cancellation the carrier has not confirmed yet: retried with capped backoff. */
class NotYetConfirmed extends Error {}

/** Each queue's job → its step. A step answers what happened; waiting and retrying are decided here. */
const PROCESSORS: Record<QueueName, (ctx: Context, job: Job, token?: string) => Promise<string>> = {
  allocation: (ctx, job) => allocate(ctx, job.data),
  dispatch: async (ctx, job, token) => {
    const result = await dispatch(ctx, job.data);
    if (result.kind !== 'wait') return result.kind;
    // The carrier's backoff or Retry-After: the job waits without spending an attempt.
    await job.moveToDelayed(Date.now() + result.delayMs, token);
    throw new DelayedError();
  },
  cancellation: async (ctx, job) => {
    const result = await cancelBooking(ctx, job.data.shipmentId);
    if (result === 'retry') throw new NotYetConfirmed(`parcel ${job.data.shipmentId}: cancel not confirmed yet`);
    return result;
  },
  notification: (ctx, job) => sendNotification(ctx, job.data, isFinalAttempt(job)),
};

export interface WorkerPool {
  workers: Worker[];
  close(): Promise<void>;
}

/** One BullMQ Worker per served queue, plus the reconciler. */
export function startWorkers(ctx: Context, queueNames: QueueName[], metrics?: Metrics): WorkerPool {
  const workers = queueNames.map((name) => {
    const worker = new Worker(
      name,
      async (job, token) => {
        try {
          return await PROCESSORS[name](ctx, job, token);
        } catch (error) {
          if (error instanceof UnrecoverableError || error instanceof DelayedError) throw error;
          ctx.log.warn(
            { queue: name, jobId: job.id, attempt: job.attemptsMade + 1, err: error },
            'job failed; will retry',
          );
          throw error;
        }
      },
      {
        connection: ctx.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true }),
        prefix: ctx.config.queuePrefix,
        concurrency: ctx.config.workerConcurrency,
        lockDuration: ctx.config.workerLockDurationMs,
        stalledInterval: ctx.config.workerStalledIntervalMs,
        maxStalledCount: 3,
        settings: { backoffStrategy: (attemptsMade: number) => cappedBackoff(attemptsMade) },
      },
    );
    worker.on('error', (error) => ctx.log.warn({ queue: name, err: error.message }, 'worker connection error'));
    worker.on('failed', (job, error) => {
      if (job && isFinalAttempt(job)) ctx.log.error({ queue: name, jobId: job.id, err: error }, 'job failed for good');
    });
    worker.on('completed', (job) => {
      if (metrics && job.processedOn && job.finishedOn) {
        metrics.jobDuration.observe({ queue: name }, (job.finishedOn - job.processedOn) / 1000);
      }
    });
    return worker;
  });
  const reconciler = startReconciler(ctx);
  ctx.log.info({ queues: queueNames }, 'workers started');
  return {
    workers,
    async close() {
      reconciler.stop();
      // With Redis away a graceful close would wait for it forever; jobs in flight then come
      // back through their expired locks (or the reconciler) instead.
      const force = ctx.redis.status !== 'ready';
      await Promise.all(workers.map((w) => w.close(force)));
      await Promise.all(workers.map((w) => w.disconnect().catch(() => undefined)));
    },
  };
}
