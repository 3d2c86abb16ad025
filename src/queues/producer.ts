import { Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { jobPriority, type Priority } from '../domain/priority.js';
import {
  BOOKING,
  carrierQueueName,
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

/** Producers for every queue of the topology. The API and the workers each hold one. */
export class Queues {
  readonly byName: Record<QueueName, Queue>;

  constructor(
    readonly connection: Redis,
    readonly prefix: string,
    settings: QueueSettings,
  ) {
    this.byName = Object.fromEntries(
      QUEUE_NAMES.map((name) => [
        name,
        new Queue(name, { connection, prefix, defaultJobOptions: TOPOLOGY[name].options(settings) }),
      ]),
    ) as Record<QueueName, Queue>;
    for (const queue of Object.values(this.byName)) queue.on('error', () => {});
  }

  /** Every job carries its order's priority: BullMQ takes a job without one before all others. */
  add<Q extends QueueName>(name: Q, data: JobData[Q], priority: Priority, options: { jobId?: string } = {}) {
    const spec = TOPOLOGY[name];
    return this.byName[name].add(spec.jobName, data, {
      jobId: options.jobId ?? spec.jobId(data),
      priority: jobPriority(priority),
    });
  }

  addBulk<Q extends QueueName>(name: Q, jobs: { data: JobData[Q]; priority: Priority }[]) {
    const spec = TOPOLOGY[name];
    return this.byName[name].addBulk(
      jobs.map(({ data, priority }) => ({
        name: spec.jobName,
        data,
        opts: { jobId: spec.jobId(data), priority: jobPriority(priority) },
      })),
    );
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
    await Promise.all([...Object.values(this.byName), ...this.carrierQueues.values()].map((q) => q.close()));
  }
}
