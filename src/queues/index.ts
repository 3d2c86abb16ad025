import { Queue, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../config.js';
import { jobPriority, type Priority } from '../domain/priority.js';

export { QUEUE_NAMES, type QueueName };

export interface AllocationJob {
  orderId: string;
  attempt: number;
}
export interface DispatchJob {
  orderId: string;
  attempt: number;
}
export interface NotificationJob {
  notificationId: string;
}
export interface JobData {
  allocation: AllocationJob;
  dispatch: DispatchJob;
  notification: NotificationJob;
}

/** Job ids derive from what they work on, so enqueueing twice is harmless. */
export const jobIds = {
  allocation: (orderId: string, attempt: number) => `allocation-${orderId}-${attempt}`,
  dispatch: (orderId: string, attempt: number) => `dispatch-${orderId}-${attempt}`,
  notification: (notificationId: string) => `notification-${notificationId}`,
};

/** Finished jobs are trimmed by age and count so Redis memory stays bounded. */
const KEEP = {
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
} satisfies JobsOptions;

export interface QueueSettings {
  dispatchAttempts: number;
  notificationAttempts: number;
}

export function defaultJobOptions(name: QueueName, settings: QueueSettings): JobsOptions {
  switch (name) {
    case 'allocation':
      return { ...KEEP, attempts: 5, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 } };
    case 'dispatch':
      return {
        ...KEEP,
        attempts: settings.dispatchAttempts,
        backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
      };
    case 'notification':
      // 'capped' is the worker's backoff strategy: exponential, capped at 30 s (see workers/backoff.ts).
      return { ...KEEP, attempts: settings.notificationAttempts, backoff: { type: 'capped' } };
  }
}

export function redisConnection(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { lazyConnect: false, ...options });
}

/** Producers for every stage. The API and the workers each hold one. */
export class Queues {
  readonly queues: Record<QueueName, Queue>;

  constructor(
    readonly connection: Redis,
    readonly prefix: string,
    settings: QueueSettings,
  ) {
    this.queues = Object.fromEntries(
      QUEUE_NAMES.map((name) => [
        name,
        new Queue(name, { connection, prefix, defaultJobOptions: defaultJobOptions(name, settings) }),
      ]),
    ) as Record<QueueName, Queue>;
    for (const queue of Object.values(this.queues)) queue.on('error', () => {});
  }

  allocate(orderId: string, attempt: number, priority: Priority) {
    return this.queues.allocation.add(
      'allocate',
      { orderId, attempt },
      { jobId: jobIds.allocation(orderId, attempt), priority: jobPriority(priority) },
    );
  }

  dispatch(orderId: string, attempt: number, priority: Priority) {
    return this.queues.dispatch.add(
      'dispatch',
      { orderId, attempt },
      { jobId: jobIds.dispatch(orderId, attempt), priority: jobPriority(priority) },
    );
  }

  notify(notificationId: string, priority: Priority) {
    return this.queues.notification.add(
      'notify',
      { notificationId },
      { jobId: jobIds.notification(notificationId), priority: jobPriority(priority) },
    );
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}
