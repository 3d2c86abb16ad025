import type { Context as OtelContext } from '@opentelemetry/api';
import { Queue, type Job, type JobsOptions, type JobType, type Telemetry } from 'bullmq';
import type { QueueBackend } from './backend.js';
import type { Coordination } from './coordination.js';
import { jobPriority, PRIORITIES, type Priority } from '../domain/priority.js';
import type { Channel } from '../domain/notify.js';
import {
  BOOKING,
  carrierLaneName,
  isLaned,
  laneName,
  LANED_STAGES,
  NOTIFICATION_CHANNELS,
  notificationQueueName,
  TOPOLOGY,
  type BookingJob,
  type JobData,
  type LanedStage,
  type QueueName,
  type QueueSettings,
} from './topology.js';

export { redisConnection } from './connection.js';

/**
 * The lanes of one stage (or of one carrier's booking calls), one queue per class, seen as one
 * queue where a job is looked up by id: job ids are unique within a stage, so at most one lane
 * holds a given id. Sums counts over the lanes.
 */
export class Lanes {
  constructor(readonly byClass: Record<Priority, Queue>) {}

  get all(): Queue[] {
    return PRIORITIES.map((c) => this.byClass[c]);
  }

  async getJob(id: string): Promise<Job | undefined> {
    for (const queue of this.all) {
      const job = await queue.getJob(id);
      if (job) return job;
    }
    return undefined;
  }

  async getJobState(id: string): Promise<Awaited<ReturnType<Queue['getJobState']>>> {
    const states = await Promise.all(this.all.map((q) => q.getJobState(id)));
    return states.find((s) => s !== 'unknown') ?? 'unknown';
  }

  /** 1 when a lane removed the job, else 0 (gone, or locked by a worker). */
  async remove(id: string): Promise<number> {
    const removed = await Promise.all(this.all.map((q) => q.remove(id)));
    return removed.some((n) => n === 1) ? 1 : 0;
  }

  async getJobCounts(...types: JobType[]): Promise<Record<string, number>> {
    const each = await Promise.all(this.all.map((q) => q.getJobCounts(...types)));
    const sum: Record<string, number> = {};
    for (const counts of each) for (const [k, n] of Object.entries(counts)) sum[k] = (sum[k] ?? 0) + n;
    return sum;
  }

  async getActiveCount(): Promise<number> {
    return (await this.getJobCounts('active')).active ?? 0;
  }

  async getJobs(types: JobType[], start = 0, end = -1): Promise<Job[]> {
    return (await Promise.all(this.all.map((q) => q.getJobs(types, start, end)))).flat() as Job[];
  }

  async getWorkersCount(): Promise<number> {
    return Math.min(...(await Promise.all(this.all.map((q) => q.getWorkersCount()))));
  }

  async pause(): Promise<void> {
    await Promise.all(this.all.map((q) => q.pause()));
  }

  async resume(): Promise<void> {
    await Promise.all(this.all.map((q) => q.resume()));
  }

  async drain(delayed = false): Promise<void> {
    await Promise.all(this.all.map((q) => q.drain(delayed)));
  }

  async obliterate(opts?: { force?: boolean }): Promise<void> {
    await Promise.all(this.all.map((q) => q.obliterate(opts)));
  }
}

/** Stages served by one queue (cancellation), or one lane per class (LANED_STAGES). */
export type StageQueueName = Exclude<QueueName, 'notification'>;

/** Who a job is for: its class picks the lane (or BullMQ priority), its shop its turn in the lane. */
export interface JobFor {
  priority: Priority;
  /** The order's shop; jobs without one share one turn. */
  shopId?: string;
  /**
   * The trace the job continues (its order's request), when it is not the active one: a group
   * commit enqueues many requests' orders from one of them (steps/intake.ts).
   */
  trace?: OtelContext;
}

const NO_SHOP = '-';

/** Producers for every queue of the topology. The API and the workers each hold one. */
export class Queues {
  /** The laned stages (allocation, dispatch), each one queue per class. */
  readonly lanes: Record<LanedStage, Lanes>;
  readonly cancellation: Queue;
  /** The notification stage's queues, one per channel (`notification.{channel}`). */
  readonly notification: Record<Channel, Queue>;

  constructor(
    readonly backend: QueueBackend,
    /** Where each lane's fair-queueing tags live (queues/fair.ts). */
    private readonly coord: Coordination,
    settings: QueueSettings,
    /** BullMQ's telemetry (src/telemetry.ts): each job's span continues its producer's trace. */
    private readonly telemetry?: Telemetry,
  ) {
    const make = (name: string, options: JobsOptions) => {
      const queue = backend.queue(name, { defaultJobOptions: options, telemetry });
      queue.on('error', () => {});
      return queue;
    };
    this.lanes = Object.fromEntries(
      LANED_STAGES.map((stage) => [
        stage,
        new Lanes(
          Object.fromEntries(
            PRIORITIES.map((c) => [c, make(laneName(stage, c), TOPOLOGY[stage].options(settings))]),
          ) as Record<Priority, Queue>,
        ),
      ]),
    ) as Record<LanedStage, Lanes>;
    this.cancellation = make('cancellation', TOPOLOGY.cancellation.options(settings));
    this.notification = Object.fromEntries(
      NOTIFICATION_CHANNELS.map((channel) => [
        channel,
        make(notificationQueueName(channel), TOPOLOGY.notification.options(settings)),
      ]),
    ) as Record<Channel, Queue>;
  }

  /** A stage seen as one queue (its lanes together, for a laned stage): look-ups by job id, counts. */
  get byName(): { allocation: Lanes; dispatch: Lanes; cancellation: Queue } {
    return { ...this.lanes, cancellation: this.cancellation };
  }

  /** The queue a job of stage `name` joins: its class's lane, the stage's own, or its channel's. */
  queueOf<Q extends QueueName>(name: Q, data: JobData[Q], priority: Priority): Queue {
    if (name === 'notification') return this.notification[(data as JobData['notification']).channel];
    if (isLaned(name)) return this.lanes[name].byClass[priority];
    return this.cancellation;
  }

  /** Every queue of a stage (lanes and channels included), for metrics and draining. */
  queuesOf(name: QueueName): Queue[] {
    if (name === 'notification') return Object.values(this.notification);
    if (isLaned(name)) return this.lanes[name].all;
    return [this.cancellation];
  }

  /** Every stage queue, lane and channel queue (not the per-carrier ones: see knownCarrierQueues). */
  stageQueues(): Queue[] {
    return [
      ...LANED_STAGES.flatMap((stage) => this.lanes[stage].all),
      this.cancellation,
      ...Object.values(this.notification),
    ];
  }

  /**
   * BullMQ priorities for jobs joining `queue`: in a lane, each shop's turn (queues/fair.ts);
   * elsewhere the class. Every job carries one: BullMQ takes a job without one before all others.
   */
  private async prioritiesFor(queue: Queue, laned: boolean, jobs: JobFor[]): Promise<number[]> {
    if (!laned) return jobs.map((j) => jobPriority(j.priority));
    return this.coord.fairTags(
      queue.name,
      jobs.map((j) => j.shopId ?? NO_SHOP),
    );
  }

  async add<Q extends QueueName>(name: Q, data: JobData[Q], job: JobFor, options: { jobId?: string } = {}) {
    const spec = TOPOLOGY[name];
    const queue = this.queueOf(name, data, job.priority);
    const [priority] = await this.prioritiesFor(queue, isLaned(name), [job]);
    return queue.add(spec.jobName, data, { jobId: options.jobId ?? spec.jobId(data), priority });
  }

  /** Jobs of one stage, in two round trips per queue they join (their turns, then the jobs). */
  async addBulk<Q extends QueueName>(name: Q, jobs: ({ data: JobData[Q] } & JobFor)[]) {
    const spec = TOPOLOGY[name];
    const byQueue = new Map<Queue, ({ data: JobData[Q] } & JobFor)[]>();
    for (const job of jobs) {
      const queue = this.queueOf(name, job.data, job.priority);
      byQueue.set(queue, [...(byQueue.get(queue) ?? []), job]);
    }
    const added = await Promise.all(
      [...byQueue].map(async ([queue, list]) => {
        const priorities = await this.prioritiesFor(queue, isLaned(name), list);
        return queue.addBulk(
          list.map(({ data, trace }, i) => ({
            name: spec.jobName,
            data,
            opts: { jobId: spec.jobId(data), priority: priorities[i], ...this.traceOf(trace) },
          })),
        );
      }),
    );
    return added.flat();
  }

  /** BullMQ's propagation metadata for a job that continues `trace` rather than the active context. */
  private traceOf(trace: OtelContext | undefined): Pick<JobsOptions, 'telemetry'> {
    if (!trace || !this.telemetry) return {};
    return { telemetry: { metadata: this.telemetry.contextManager.getMetadata(trace) } };
  }

  private readonly carrierLanes = new Map<string, Lanes>();

  /** The booking lanes of one carrier, made on first use. */
  carrierQueue(carrierId: string): Lanes {
    let lanes = this.carrierLanes.get(carrierId);
    if (!lanes) {
      const byClass = Object.fromEntries(
        PRIORITIES.map((c) => {
          const queue = this.backend.queue(carrierLaneName(carrierId, c), {
            defaultJobOptions: BOOKING.options(),
            telemetry: this.telemetry,
          });
          queue.on('error', () => {});
          return [c, queue];
        }),
      ) as Record<Priority, Queue>;
      lanes = new Lanes(byClass);
      this.carrierLanes.set(carrierId, lanes);
    }
    return lanes;
  }

  /** Booking lanes made so far by this process, each carrier's. */
  knownCarrierLanes(): Lanes[] {
    return [...this.carrierLanes.values()];
  }

  /** Booking lanes made so far by this process, as queues. */
  knownCarrierQueues(): Queue[] {
    return this.knownCarrierLanes().flatMap((lanes) => lanes.all);
  }

  /** One booking call, after `delayMs` (a backoff or Retry-After), in its order's lane and turn. */
  async book(job: BookingJob, order: JobFor, delayMs = 0) {
    const queue = this.carrierQueue(job.carrierId).byClass[order.priority];
    const [priority] = await this.prioritiesFor(queue, true, [order]);
    return queue.add(BOOKING.jobName, job, {
      jobId: BOOKING.jobId(job),
      priority,
      ...(delayMs > 0 ? { delay: Math.ceil(delayMs) } : {}),
    });
  }

  /** Whether the queue (a lane) named so holds no job waiting to be taken (fair queueing's reset). */
  async laneIsEmpty(name: string): Promise<boolean> {
    const queue = [...this.stageQueues(), ...this.knownCarrierQueues()].find((q) => q.name === name);
    if (!queue) return false;
    const counts = await queue.getJobCounts('waiting', 'prioritized');
    return (counts.waiting ?? 0) + (counts.prioritized ?? 0) === 0;
  }

  async close(): Promise<void> {
    await Promise.all([...this.stageQueues(), ...this.knownCarrierQueues()].map((q) => q.close()));
    await this.backend.close();
  }
}
