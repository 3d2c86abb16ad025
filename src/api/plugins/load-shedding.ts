import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.js';
import type { Priority } from '../../domain/priority.js';
import {
  isShed,
  nextDrain,
  retryAfterSeconds,
  type BacklogSample,
  type Watermarks,
} from '../../domain/shedding.js';
import { AppError } from '../../errors.js';
import { takeSlot } from '../../integrations/sliding-log.js';
import type { Logger } from '../../logger.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Load shedding and the global intake ceiling, asked once per order before it is written. */
    intakeGate: IntakeGate;
  }
}

/** How long one reading of the backlog is used by this process. */
export const BACKLOG_CACHE_MS = 250;
/** How long a request waits for a reading due before it goes on with the last one. */
const QUICK_READ_MS = 50;
const STALE = Symbol('stale');
/** A reading that takes longer than this counts as failed (do not shed). */
const READ_TIMEOUT_MS = 1_000;
/** A failed reading is logged at most once in this period. */
const WARN_EVERY_MS = 60_000;
/** The global intake ceiling's window. */
const CEILING_WINDOW_MS = 1_000;
/** Job states that count as backlog: taken by no worker yet. */
const BACKLOG_STATES = ['waiting', 'prioritized', 'delayed'] as const;

export interface IntakeGate {
  /**
   * undefined: take the order; else the error to answer instead — 503 `overloaded` (its priority
   * is shed) or 429 `rate_limited` (over INTAKE_MAX_PER_SECOND). Asked before anything is written.
   */
  admit(priority: Priority): Promise<AppError | undefined>;
}

export interface GateOptions {
  marks: Watermarks;
  /** Orders per second across every replica; undefined: no ceiling. */
  maxPerSecond: number | undefined;
  /** The backlog as the workers see it; may throw (Redis away). */
  readBacklog(): Promise<number>;
  /** Takes one slot of the global ceiling: 0 when accepted, else the ms until one frees. */
  takeCeilingSlot(max: number, always: boolean): Promise<number>;
  log: Pick<Logger, 'warn'>;
  /** Called for each shed order. */
  onShed?(priority: Priority): void;
  now?(): number;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The gate's rules over injected reads, so they can be tested without Redis. */
export function createIntakeGate(options: GateOptions): IntakeGate {
  const now = options.now ?? Date.now;
  let reading: { backlog: number | undefined; at: number } | undefined;
  let pending: Promise<number | undefined> | undefined;
  let lastSample: BacklogSample | undefined;
  let drain: number | undefined;
  let warnedAt = -Infinity;

  async function read(): Promise<number | undefined> {
    const at = now();
    let backlog: number | undefined;
    try {
      backlog = await withTimeout(options.readBacklog(), READ_TIMEOUT_MS);
      const sample = { backlog, at };
      drain = nextDrain(lastSample, sample, drain);
      lastSample = sample;
    } catch (error) {
      // Not knowing the backlog is no reason to refuse orders: take them, and say so now and then.
      if (at - warnedAt >= WARN_EVERY_MS) {
        warnedAt = at;
        options.log.warn(
          { err: (error as Error).message },
          'load shedding: cannot read the backlog; not shedding',
        );
      }
    }
    reading = { backlog, at };
    return backlog;
  }

  /**
   * The backlog, read at most every BACKLOG_CACHE_MS by this process (one read at a time). A
   * request waits for a fresh reading only QUICK_READ_MS: a slow Redis never slows intake down —
   * the last reading (or none: do not shed) stands in while the read finishes.
   */
  async function backlog(): Promise<number | undefined> {
    if (reading && now() - reading.at < BACKLOG_CACHE_MS) return reading.backlog;
    pending ??= read().finally(() => {
      pending = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof STALE>((resolve) => {
      timer = setTimeout(() => resolve(STALE), QUICK_READ_MS);
    });
    const fresh = await Promise.race([pending, late]).finally(() => clearTimeout(timer));
    return fresh === STALE ? reading?.backlog : fresh;
  }

  return {
    async admit(priority) {
      const current = await backlog();
      if (current !== undefined && isShed(priority, current, options.marks)) {
        options.onShed?.(priority);
        const seconds = retryAfterSeconds(priority, current, options.marks, drain);
        return new AppError(
          503,
          'overloaded',
          `The engine is overloaded and is not taking ${priority} orders now; retry after ${seconds} s.`,
          { headers: { 'retry-after': String(seconds) } },
        );
      }
      const max = options.maxPerSecond;
      if (max === undefined) return undefined;
      // Essential orders are never refused by the ceiling, but take their room in it.
      const waitMs = await options.takeCeilingSlot(max, priority === 'essential');
      if (waitMs === 0) return undefined;
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      return new AppError(
        429,
        'rate_limited',
        `Over the intake ceiling of ${max} orders per second across all shops; retry after ${seconds} s.`,
        { headers: { 'retry-after': String(seconds) } },
      );
    },
  };
}

/** The gate of one API process: its backlog from the allocation and dispatch queues in Redis. */
export function intakeGate(ctx: Context, onShed?: (priority: Priority) => void): IntakeGate {
  const stages = [ctx.queues.byName.allocation, ctx.queues.byName.dispatch];
  return createIntakeGate({
    marks: ctx.config.shedAt,
    maxPerSecond: ctx.config.intakeMaxPerSecond,
    log: ctx.log,
    onShed,
    async readBacklog() {
      // Redis away: BullMQ would wait for it; not knowing is answered at once instead.
      if (ctx.queues.connection.status !== 'ready') throw new Error('Redis is not connected');
      const counts = await Promise.all(stages.map((queue) => queue.getJobCounts(...BACKLOG_STATES)));
      return counts.reduce((sum, c) => sum + BACKLOG_STATES.reduce((n, state) => n + (c[state] ?? 0), 0), 0);
    },
    takeCeilingSlot: (max, always) =>
      takeSlot(ctx.redis, `${ctx.config.queuePrefix}:ratelimit:intake`, CEILING_WINDOW_MS, max, always),
  });
}

/**
 * Decorates the scope with `intakeGate`, which the order routes ask once per order (the single
 * POST and each order of a batch), after validation and before anything is read or written.
 */
export function registerLoadShedding(
  app: FastifyInstance,
  ctx: Context,
  onShed?: (priority: Priority) => void,
) {
  app.decorate('intakeGate', intakeGate(ctx, onShed));
}
