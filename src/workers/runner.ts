import { DelayedError, UnrecoverableError, type Job, type Worker } from 'bullmq';
import type { Context } from '../context.js';
import type { Channel } from '../domain/notify.js';
import type { Metrics } from '../metrics.js';
import { PRIORITIES, type Priority } from '../domain/priority.js';
import { disconnectWorker } from '../queues/connection.js';
import {
  carrierLaneName,
  isLaned,
  laneName,
  NOTIFICATION_CHANNELS,
  notificationQueueName,
  type LanedStage,
  type QueueName,
} from '../queues/topology.js';
import { allocate } from '../steps/allocate.js';
import { cancelBooking } from '../steps/cancel-booking.js';
import { bookCall, dispatch, type DispatchResult } from '../steps/dispatch.js';
import { sendNotification } from '../steps/notify.js';
import { cappedBackoff } from './backoff.js';
import { startCarrierWorkers } from './carrier-workers.js';
import { LaneGate } from './lane-gate.js';
import { LOCKDOWN_TICK_MS, lockdownPassOnce } from '../steps/lockdown.js';
import { BACKORDER_TICK_MS, backorderPassOnce } from '../steps/backorders.js';
import { startTicker } from './ticker.js';
import { startReconciler } from './reconciler.js';
import { startStockWatch } from './stock-watch.js';

/** True when this run is the job's last chance: the stage then ends the work instead of throwing. */
function isFinalAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** A cancellation the carrier has not confirmed yet: retried with capped backoff. */
class NotYetConfirmed extends Error {}

type Processor = (ctx: Context, job: Job, token?: string) => Promise<string>;

/** A dispatch step's answer; `wait` delays the job without spending an attempt (a backoff, a cancel to confirm). */
async function settle(result: DispatchResult, job: Job, token?: string): Promise<string> {
  if (result.kind !== 'wait') return result.kind;
  await job.moveToDelayed(Date.now() + result.delayMs, token);
  throw new DelayedError();
}

/** Booking calls, on every carrier's lanes (`dispatch.{carrierId}.{class}`). */
const bookingProcessor: Processor = async (ctx, job, token) =>
  settle(await bookCall(ctx, job.data), job, token);

/** Each queue's job → its step. A step answers what happened; waiting and retrying are decided here. */
const PROCESSORS: Record<QueueName, Processor> = {
  allocation: (ctx, job) => allocate(ctx, job.data),
  dispatch: async (ctx, job, token) => settle(await dispatch(ctx, job.data), job, token),
  cancellation: async (ctx, job) => {
    const result = await cancelBooking(ctx, job.data.shipmentId);
    if (result === 'retry')
      throw new NotYetConfirmed(`parcel ${job.data.shipmentId}: cancel not confirmed yet`);
    return result;
  },
  notification: async (ctx, job, token) => {
    const outcome = await sendNotification(ctx, job.data, isFinalAttempt(job));
    if (typeof outcome === 'string') return outcome;
    // Retry-After: the job waits it out without spending an attempt.
    await job.moveToDelayed(Date.now() + outcome.delayMs, token);
    throw new DelayedError();
  },
};

/** BullMQ's limiter: at most `max` jobs per `duration` ms across every worker of the queue. */
interface Limiter {
  max: number;
  duration: number;
}

/**
 * A channel's rate limit (messages per second across every replica) as BullMQ's limiter; 0: none.
 * It is the provider's limit: a channel with no provider configured (messages only recorded) has none.
 */
function channelLimiter(ctx: Context, channel: Channel): Limiter | undefined {
  const provided = channel === 'sms' ? ctx.config.sms.url : channel === 'email' ? ctx.config.smtp.url : true;
  const perSecond = ctx.config.notificationRates[channel];
  return provided && perSecond > 0 ? { max: perSecond, duration: 1000 } : undefined;
}

export interface WorkerPool {
  workers: Worker[];
  close(): Promise<void>;
}

interface Lane {
  gate: LaneGate;
  lane: Priority;
}

function makeWorker(
  ctx: Context,
  name: string,
  label: QueueName,
  processor: Processor,
  metrics: Metrics | undefined,
  options: { limiter?: Limiter; lane?: Lane } = {},
): Worker {
  const { limiter, lane } = options;
  const work = async (job: Job, token?: string) => {
    const started = performance.now();
    const result = await processor(ctx, job, token);
    const seconds = (performance.now() - started) / 1000;
    metrics?.jobDuration.observe({ queue: label }, seconds);
    // Ids only (no job data): with tracing on, the line carries the job span's trace and span ids.
    ctx.log.debug({ queue: name, jobId: job.id, orderId: job.data?.orderId, result, seconds }, 'job done');
    return result;
  };
  const worker = ctx.queues.backend.worker(
    name,
    async (job, token) => {
      try {
        if (!lane) return await work(job, token);
        // Its turn taken: the lane's frontier moves up to it (queues/fair.ts); then a slot.
        await ctx.coord
          .fairTake(name, job.opts.priority ?? 0, () => ctx.queues.laneIsEmpty(name))
          .catch(() => undefined);
        return await lane.gate.run(lane.lane, () => work(job, token));
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
      // Each job is processed in its span, which continues the trace of whoever added the job.
      telemetry: ctx.telemetry,
      // A lane's worker takes more than the stage's slots (at least 4 more), so that when a slot
      // frees, the lane that just used it has its next jobs waiting at the gate already.
      concurrency: lane
        ? ctx.config.workerConcurrency + Math.max(ctx.config.workerConcurrency, LANE_PREFETCH)
        : ctx.config.workerConcurrency,
      lockDuration: ctx.config.workerLockDurationMs,
      stalledInterval: ctx.config.workerStalledIntervalMs,
      maxStalledCount: 3,
      settings: { backoffStrategy: (attemptsMade: number) => cappedBackoff(attemptsMade) },
      ...(limiter ? { limiter } : {}),
    },
  );
  worker.on('error', (error) => ctx.log.warn({ queue: name, err: error.message }, 'worker connection error'));
  worker.on('failed', (job, error) => {
    if (job && isFinalAttempt(job))
      ctx.log.error({ queue: name, jobId: job.id, err: error }, 'job failed for good');
  });
  return worker;
}

/**
 * One worker per lane of a stage (or of a carrier's booking calls), sharing one gate of
 * WORKER_CONCURRENCY slots: the lanes are taken by share (domain/lanes.ts), not each on its own.
 */
/** The longest a new stage's gate waits to hear from each of its lanes before its first admission. */
const LANES_HEARD_TIMEOUT_MS = 5000;
/** Jobs a lane's worker holds at its gate beyond the stage's slots, at least. */
const LANE_PREFETCH = 4;

function laneWorkers(
  ctx: Context,
  names: Record<Priority, string>,
  label: QueueName,
  processor: Processor,
  metrics: Metrics | undefined,
  pace?: () => Promise<number>,
): Worker[] {
  const gate = new LaneGate(ctx.config.workerConcurrency, ctx.config.minShares, pace);
  const workers = PRIORITIES.map((lane) =>
    makeWorker(ctx, names[lane], label, processor, metrics, { lane: { gate, lane } }),
  );
  gate.holdUntilHeard(LANES_HEARD_TIMEOUT_MS);
  PRIORITIES.forEach((lane, i) => {
    workers[i].on('active', () => gate.laneTook(lane));
    workers[i].on('drained', () => gate.laneEmpty(lane));
  });
  return workers;
}

const stageLaneNames = (stage: LanedStage) =>
  Object.fromEntries(PRIORITIES.map((c) => [c, laneName(stage, c)])) as Record<Priority, string>;

/** BullMQ Workers for every served queue and lane (and, with `dispatch`, every carrier's lanes), plus the reconciler. */
export function startWorkers(ctx: Context, queueNames: QueueName[], metrics?: Metrics): WorkerPool {
  // The notification stage is one worker per channel queue, each with its own limiter, so a
  // failing or slow channel never holds up the others.
  const workers = queueNames.flatMap((name) =>
    name === 'notification'
      ? NOTIFICATION_CHANNELS.map((channel) =>
          makeWorker(ctx, notificationQueueName(channel), name, PROCESSORS.notification, metrics, {
            limiter: channelLimiter(ctx, channel),
          }),
        )
      : isLaned(name)
        ? laneWorkers(ctx, stageLaneNames(name), name, PROCESSORS[name], metrics)
        : [makeWorker(ctx, name, name, PROCESSORS[name], metrics)],
  );
  const carrierWorkers = queueNames.includes('dispatch')
    ? startCarrierWorkers(
        ctx,
        (carrierId, pace) =>
          laneWorkers(
            ctx,
            Object.fromEntries(PRIORITIES.map((c) => [c, carrierLaneName(carrierId, c)])) as Record<
              Priority,
              string
            >,
            'dispatch',
            bookingProcessor,
            metrics,
            pace,
          ),
        ctx.config.carrierRefreshMs,
      )
    : undefined;
  const reconciler = startReconciler(ctx);
  // Lifts lockdowns whose `until` passed and resumes held orders; allocates backorders when stock arrives.
  const lockdowns = startTicker(ctx, 'lockdown pass', LOCKDOWN_TICK_MS, (s) => lockdownPassOnce(ctx, s));
  const backorders = startTicker(ctx, 'backorder pass', BACKORDER_TICK_MS, (s) => backorderPassOnce(ctx, s));
  const stockWatch = startStockWatch(ctx); // raises and clears stock alerts
  ctx.log.info({ queues: queueNames }, 'workers started');
  return {
    workers,
    async close() {
      reconciler.stop();
      await Promise.all([lockdowns.stop(), backorders.stop(), stockWatch.stop()]);
      // With Redis away a graceful close would wait for it forever; jobs in flight then come
      // back through their expired locks (or the reconciler) instead.
      const force = !ctx.coord.connected();
      await Promise.all([...workers.map((w) => w.close(force)), carrierWorkers?.close()]);
      await Promise.all(workers.map((w) => disconnectWorker(w)));
    },
  };
}
