import { Queue, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { jobPriority, type Priority } from '../domain/priority.js';
import type { Channel } from '../domain/notify.js';
import {
  BOOKING,
  carrierQueueName,
  NOTIFICATION_CHANNELS,
  notificationQueueName,
  QUEUE_NAMES,
  TOPOLOGY,
  type BookingJob,
  type JobData,
  type QueueName,
  type QueueSettings,
} from './topology.js';

export function redisConnection(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { lazyConnect: false, ...options });
}

/** Stages served by one queue each; `notification` is split by channel (see `notification`). */
export type StageQueueName = Exclude<QueueName, 'notification'>;

/** Producers for every queue of the topology. The API and the workers each hold one. */
export class Queues {
  readonly byName: Record<StageQueueName, Queue>;
  /** The notification stage's queues, one per channel (`notification.{channel}`). */
  readonly notification: Record<Channel, Queue>;

  constructor(
    readonly connection: Redis,
    readonly prefix: string,
    settings: QueueSettings,
  ) {
    const make = (name: string, options: JobsOptions) =>
      new Queue(name, { connection, prefix, defaultJobOptions: options });
    this.byName = Object.fromEntries(
      QUEUE_NAMES.filter((name) => name !== 'notification').map((name) => [
        name,
        make(name, TOPOLOGY[name].options(settings)),
      ]),
    ) as Record<StageQueueName, Queue>;
    this.notification = Object.fromEntries(
      NOTIFICATION_CHANNELS.map((channel) => [
        channel,
        make(notificationQueueName(channel), TOPOLOGY.notification.options(settings)),
      ]),
    ) as Record<Channel, Queue>;
    for (const queue of this.stageQueues()) queue.on('error', () => {});
  }

  /** The queue a job of stage `name` joins: the stage's own, or its channel's for a notification. */
  queueOf<Q extends QueueName>(name: Q, data: JobData[Q]): Queue {
    if (name === 'notification') return this.notification[(data as JobData['notification']).channel];
    return this.byName[name as StageQueueName];
  }

  /** Every queue of a stage (the split ones included), for metrics and draining. */
  queuesOf(name: QueueName): Queue[] {
    return name === 'notification' ? Object.values(this.notification) : [this.byName[name]];
  }

  /** Every stage queue and channel queue (not the per-carrier ones: see knownCarrierQueues). */
  stageQueues(): Queue[] {
    return [...Object.values(this.byName), ...Object.values(this.notification)];
  }

  /** Every job carries its order's priority: BullMQ takes a job without one before all others. */
  add<Q extends QueueName>(name: Q, data: JobData[Q], priority: Priority, options: { jobId?: string } = {}) {
    const spec = TOPOLOGY[name];
    return this.queueOf(name, data).add(spec.jobName, data, {
      jobId: options.jobId ?? spec.jobId(data),
      priority: jobPriority(priority),
    });
  }

  /** Jobs of one stage, in one round trip per queue they join. */
  async addBulk<Q extends QueueName>(name: Q, jobs: { data: JobData[Q]; priority: Priority }[]) {
    const spec = TOPOLOGY[name];
    const byQueue = new Map<Queue, { data: JobData[Q]; priority: Priority }[]>();
    for (const job of jobs) {
      const queue = this.queueOf(name, job.data);
      byQueue.set(queue, [...(byQueue.get(queue) ?? []), job]);
    }
    const added = await Promise.all(
      [...byQueue].map(([queue, list]) =>
        queue.addBulk(
          list.map(({ data, priority }) => ({
            name: spec.jobName,
            data,
            opts: { jobId: spec.jobId(data), priority: jobPriority(priority) },
          })),
        ),
      ),
    );
    return added.flat();
  }

  private readonly carrierQueues = new Map<string, Queue>();

  /** The booking queue of one carrier, made on first use. */
  carrierQueue(carrierId: string): Queue {
    let queue = this.carrierQueues.get(carrierId);
    if (!queue) {
      queue = new Queue(carrierQueueName(carrierId), {
        connection: this.connection,
        prefix: this.prefix,
        defaultJobOptions: BOOKING.options(),
      });
      queue.on('error', () => {});
      this.carrierQueues.set(carrierId, queue);
    }
    return queue;
  }

  /** Queues for booking calls made so far by this process. */
  knownCarrierQueues(): Queue[] {
    return [...this.carrierQueues.values()];
  }

  /** One booking call, after `delayMs` (a backoff or Retry-After), in its order's priority. */
  book(job: BookingJob, priority: Priority, delayMs = 0) {
    return this.carrierQueue(job.carrierId).add(BOOKING.jobName, job, {
      jobId: BOOKING.jobId(job),
      priority: jobPriority(priority),
      ...(delayMs > 0 ? { delay: Math.ceil(delayMs) } : {}),
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.stageQueues(), ...this.carrierQueues.values()].map((q) => q.close()));
  }
}
