/**
 * What the engine's queues hold ahead of a new order, read from Redis and shared by the two
 * readers of one process: load shedding (api/plugins/load-shedding.ts) and the delivery promise
 * (steps/promise.ts). One reading every BACKLOG_CACHE_MS per process, one read at a time; an
 * order never waits more than QUICK_READ_MS for it (the last reading stands in meanwhile).
 */
import type { Queue } from 'bullmq';
import type { Context } from '../context.js';
import { PRIORITIES } from '../domain/priority.js';
import type { ClassCounts } from '../domain/promise.js';
import type { Logger } from '../logger.js';

/** How long one reading is used by this process. */
export const BACKLOG_CACHE_MS = 250;
/** How long a request waits for a reading due before it goes on with the last one. */
export const QUICK_READ_MS = 50;
/** A reading that takes longer than this counts as failed. */
export const READ_TIMEOUT_MS = 1_000;
/** A failed reading is logged at most once in this period. */
export const WARN_EVERY_MS = 60_000;

/** The stages whose work stands between an order's intake and its parcels at a carrier. */
export const BACKLOG_STAGES = ['allocation', 'dispatch'] as const;
export type BacklogStage = (typeof BACKLOG_STAGES)[number];

export interface Backlog {
  /** Per stage, by class: jobs waiting, prioritized, delayed or active (see backlogByClass). */
  stages: Record<BacklogStage, ClassCounts>;
  /**
   * Load shedding's backlog (domain/shedding.ts): jobs of the allocation and dispatch queues no
   * worker has taken yet (waiting, prioritized, delayed); active jobs and carrier queues left out.
   */
  untaken: number;
}

const zero = (): ClassCounts => ({ essential: 0, express: 0, standard: 0 });

const UNTAKEN = ['waiting', 'prioritized', 'delayed'] as const;

async function countsOf(queue: Queue) {
  const counts = await queue.getJobCounts(...UNTAKEN, 'active');
  const untaken = UNTAKEN.reduce((n, state) => n + (counts[state] ?? 0), 0);
  return { untaken, all: untaken + (counts.active ?? 0) };
}

/**
 * Every queue count the engine reads for its backlog, in one place. Each stage waits in one lane
 * per class (queues/topology.ts), so a class's backlog is its lanes' jobs: waiting, prioritized,
 * delayed and active (a worker has them, or they wait at its gate: every new order comes after
 * them). Dispatch counts its own lanes and the booking lanes of every carrier this process knows
 * (steps/promise.ts makes every carrier's known).
 */
export async function backlogByClass(ctx: Pick<Context, 'queues'>): Promise<Backlog> {
  const backlog: Backlog = { stages: { allocation: zero(), dispatch: zero() }, untaken: 0 };
  const carrierLanes = ctx.queues.knownCarrierLanes();
  await Promise.all(
    BACKLOG_STAGES.flatMap((stage) =>
      PRIORITIES.flatMap((priority) => {
        const own = ctx.queues.lanes[stage].byClass[priority];
        const carriers = stage === 'dispatch' ? carrierLanes.map((lanes) => lanes.byClass[priority]) : [];
        return [own, ...carriers].map(async (queue) => {
          const { untaken, all } = await countsOf(queue);
          backlog.stages[stage][priority] += all;
          if (queue === own) backlog.untaken += untaken;
        });
      }),
    ),
  );
  return backlog;
}

/** Worker processes serving each stage, across every replica (BullMQ's CLIENT LIST of its lanes). */
export async function stageWorkers(ctx: Pick<Context, 'queues'>): Promise<Record<BacklogStage, number>> {
  const [allocation, dispatch] = await Promise.all(
    BACKLOG_STAGES.map((stage) => ctx.queues.lanes[stage].getWorkersCount()),
  );
  return { allocation, dispatch };
}

/** A reading: its value (undefined: the read failed) and when it was taken. */
export interface Reading<T> {
  value: T | undefined;
  at: number;
}

export interface CachedReaderOptions {
  cacheMs?: number;
  quickMs?: number;
  timeoutMs?: number;
  now?(): number;
  /** Called for each failed read (the reading is then `value: undefined`). */
  onError?(error: Error, at: number): void;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const STALE = Symbol('stale');

/**
 * `read`, taken at most every `cacheMs` (one read at a time). A caller waits for a reading due
 * at most `quickMs`, and only within the first `quickMs` of the read: a slow Redis never slows
 * intake down — the last reading (or none: undefined) stands in while the read finishes. A read
 * over `timeoutMs` counts as failed.
 */
export function cachedReader<T>(
  read: () => Promise<T>,
  options: CachedReaderOptions = {},
): () => Promise<Reading<T> | undefined> {
  const now = options.now ?? Date.now;
  const cacheMs = options.cacheMs ?? BACKLOG_CACHE_MS;
  const quickMs = options.quickMs ?? QUICK_READ_MS;
  const timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS;
  let reading: Reading<T> | undefined;
  let pending: Promise<Reading<T>> | undefined;

  async function take(): Promise<Reading<T>> {
    const at = now();
    let value: T | undefined;
    try {
      value = await withTimeout(read(), timeoutMs);
    } catch (error) {
      options.onError?.(error as Error, at);
    }
    reading = { value, at };
    return reading;
  }

  let pendingSince = 0;

  return async () => {
    if (reading && now() - reading.at < cacheMs) return reading;
    if (!pending) {
      pendingSince = now();
      pending = take().finally(() => {
        pending = undefined;
      });
    }
    // quickMs is spent once per read, not once per caller: when a read is slow (a slow Redis),
    // the callers after its first quickMs go on at once with the last reading.
    const left = quickMs - (now() - pendingSince);
    if (left <= 0) return reading;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof STALE>((resolve) => {
      timer = setTimeout(() => resolve(STALE), left);
    });
    const fresh = await Promise.race([pending, late]).finally(() => clearTimeout(timer));
    return fresh === STALE ? reading : fresh;
  };
}

/** Logs a failed read at most once per WARN_EVERY_MS. */
export function warnSometimes(
  log: Pick<Logger, 'warn'>,
  message: string,
): (error: Error, at: number) => void {
  let warnedAt = -Infinity;
  return (error, at) => {
    if (at - warnedAt < WARN_EVERY_MS) return;
    warnedAt = at;
    log.warn({ err: error.message }, message);
  };
}

const shared = new WeakMap<Context, () => Promise<Reading<Backlog> | undefined>>();

/**
 * This process's backlog reading (one per Context), shared by load shedding and the promise.
 * Redis away: BullMQ would wait for it; not knowing is answered at once instead (value
 * undefined: nothing is shed, and promises are made without the wait).
 */
export function sharedBacklog(ctx: Context): () => Promise<Reading<Backlog> | undefined> {
  let reader = shared.get(ctx);
  if (!reader) {
    reader = cachedReader(
      async () => {
        if (!ctx.queues.backend.connected()) throw new Error('Redis is not connected');
        return backlogByClass(ctx);
      },
      {
        onError: warnSometimes(
          ctx.log,
          'cannot read the queue backlog: not shedding, promising without the wait ahead',
        ),
      },
    );
    shared.set(ctx, reader);
  }
  return reader;
}
