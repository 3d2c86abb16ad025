import type { JobsOptions } from 'bullmq';
import type { Channel } from '../domain/notify.js';
import type { Priority } from '../domain/priority.js';

/**
 * Every queue of the engine, in one table: its name, the rule that derives a job's id from what
 * it works on (so enqueueing twice is harmless), and its options. Producers, workers, the
 * reconciler, Bull Board, metrics and WORKER_QUEUES all read it.
 *
 * Naming scheme. A queue is named by its stage (`allocation`, `dispatch`, …). Stages split
 * further join the parts with dots, stage first — BullMQ forbids ':' in queue names:
 *   per class     `{stage}.{class}`              e.g. `allocation.essential`
 *   per carrier   `{stage}.{carrierId}.{class}`  e.g. `dispatch.swift.express` (booking calls)
 *   per channel   `{stage}.{channel}`            e.g. `notification.sms`
 * WORKER_QUEUES names stages; a process serving a stage serves all of its split queues.
 */
export const QUEUE_NAMES = ['allocation', 'dispatch', 'cancellation', 'notification'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export interface OrderJob {
  orderId: string;
  attempt: number;
}
/** One booking call of one parcel at one carrier (a job of that carrier's queue). */
export interface BookingJob {
  orderId: string;
  attempt: number;
  shipmentId: string;
  carrierId: string;
  /** The parcel's n-th booking call: part of the job id, so routing twice adds one job. */
  call: number;
}
export interface CancellationJob {
  shipmentId: string;
}
export interface NotificationJob {
  notificationId: string;
  /** The outbox row's channel: which of the stage's queues (`notification.{channel}`) the job joins. */
  channel: Channel;
}
export interface JobData {
  allocation: OrderJob;
  dispatch: OrderJob;
  cancellation: CancellationJob;
  notification: NotificationJob;
}

export interface QueueSettings {
  notificationAttempts: number;
}

/**
 * Customer messages and shop webhooks, one queue per channel (`notification.{channel}`), each with
 * its own worker and rate limit, so a failing or slow channel never holds up the others.
 */
export const NOTIFICATION_CHANNELS = ['sms', 'email', 'webhook'] as const satisfies readonly Channel[];
export const notificationQueueName = (channel: Channel) => `notification.${channel}`;
export const isNotificationQueue = (name: string) => name.startsWith('notification.');

/**
 * Stages whose work waits in one lane (queue) per class, `{stage}.{class}`, taken by each class's
 * minimum share (domain/lanes.ts). Booking calls have lanes too: `dispatch.{carrierId}.{class}`.
 * Within a lane, shops are served in turn (queues/fair.ts). Cancellations and messages keep one
 * queue (per channel) with the class as BullMQ priority.
 */
export const LANED_STAGES = ['allocation', 'dispatch'] as const satisfies readonly QueueName[];
export type LanedStage = (typeof LANED_STAGES)[number];
export const isLaned = (name: QueueName): name is LanedStage =>
  (LANED_STAGES as readonly string[]).includes(name);
export const laneName = (stage: LanedStage, lane: Priority) => `${stage}.${lane}`;

/** A carrier's booking lane; the carrier's rate limit is shared by its lanes (workers/lane-gate.ts). */
export const carrierLaneName = (carrierId: string, lane: Priority) => `dispatch.${carrierId}.${lane}`;
/**
 * The window of a carrier's `rateLimitPerSecond`: a second, plus room for the few ms between
 * taking a slot and the call landing at the carrier. The carrier queue's BullMQ limiter and the
 * sliding log taken right before each call (steps/dispatch.ts) share it, so they stay in step.
 */
export const CARRIER_RATE_WINDOW_MS = 1_150;
/** The sliding log of a carrier's booking calls (integrations/sliding-log.ts). */
export const carrierRateKey = (prefix: string, carrierId: string) => `${prefix}:carrier-rate:${carrierId}`;

/** Finished jobs are trimmed by age and count so Redis memory stays bounded. */
const KEEP = {
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
} satisfies JobsOptions;

/** Failures of our own dependencies (database, Redis) back off; the reconciler takes over after. */
const DEPENDENCY_RETRIES = { attempts: 8, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 } };

interface QueueSpec<Q extends QueueName> {
  jobName: string;
  jobId(data: JobData[Q]): string;
  options(settings: QueueSettings): JobsOptions;
}

export const TOPOLOGY: { [Q in QueueName]: QueueSpec<Q> } = {
  allocation: {
    jobName: 'allocate',
    jobId: (d) => `allocation-${d.orderId}-${d.attempt}`,
    options: () => ({ ...KEEP, ...DEPENDENCY_RETRIES }),
  },
  // Carrier retries and failover are decided per parcel (domain/carrier-choice.ts) and wait by
  // delaying the job, so these attempts only count failures of the engine itself.
  dispatch: {
    jobName: 'dispatch',
    jobId: (d) => `dispatch-${d.orderId}-${d.attempt}`,
    options: () => ({ ...KEEP, ...DEPENDENCY_RETRIES }),
  },
  // DELETE at the carrier until it answers 2xx or 404: retried for as long as it takes.
  cancellation: {
    jobName: 'cancel-booking',
    jobId: (d) => `cancellation-${d.shipmentId}`,
    options: () => ({ ...KEEP, attempts: 1000, backoff: { type: 'capped' } }),
  },
  // 'capped' is the workers' backoff strategy: exponential, capped at 30 s (workers/backoff.ts):
  // 160 attempts keep a message trying for well over an hour. Each channel's queue has these options.
  notification: {
    jobName: 'notify',
    jobId: (d) => `notification-${d.notificationId}`,
    options: (s) => ({ ...KEEP, attempts: s.notificationAttempts, backoff: { type: 'capped' } }),
  },
};

/**
 * Booking calls, one lane per carrier and class (`dispatch.{carrierId}.{class}`): one call per job, and the next
 * call is a new job (BookingJob.call in its id), so routing a parcel twice adds one job.
 */
export const BOOKING = {
  jobName: 'book',
  jobId: (d: Pick<BookingJob, 'shipmentId' | 'call'>) => `book-${d.shipmentId}-${d.call}`,
  // A call that throws (our database away) is retried; a carrier's answers never throw.
  options: (): JobsOptions => ({ ...KEEP, ...DEPENDENCY_RETRIES }),
};
