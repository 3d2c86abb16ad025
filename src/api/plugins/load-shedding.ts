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
import { sharedBacklog, type Reading } from '../../queues/backlog.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Load shedding and the global intake ceiling, asked once per order before it is written. */
    intakeGate: IntakeGate;
  }
}

/** The global intake ceiling's window. */
const CEILING_WINDOW_MS = 1_000;

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
  /**
   * The latest reading of the backlog as the workers see it (a cached, shared reading: see
   * queues/backlog.ts sharedBacklog); undefined, or a reading without a value: not known (do
   * not shed).
   */
  readBacklog(): Promise<Reading<number> | undefined>;
  /** Takes one slot of the global ceiling: 0 when accepted, else the ms until one frees. */
  takeCeilingSlot(max: number, always: boolean): Promise<number>;
  /** Called for each shed order. */
  onShed?(priority: Priority): void;
}

/** The gate's rules over injected reads, so they can be tested without Redis. */
export function createIntakeGate(options: GateOptions): IntakeGate {
  let lastSample: BacklogSample | undefined;
  let drain: number | undefined;

  /** The backlog now, or undefined; each new reading also updates the measured drain. */
  async function backlog(): Promise<number | undefined> {
    const reading = await options.readBacklog();
    if (reading?.value === undefined) return undefined;
    if (!lastSample || reading.at > lastSample.at) {
      const sample = { backlog: reading.value, at: reading.at };
      drain = nextDrain(lastSample, sample, drain);
      lastSample = sample;
    }
    return reading.value;
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

/**
 * The gate of one API process: its backlog from the allocation and dispatch queues in Redis,
 * the reading this process shares with the delivery promise (queues/backlog.ts).
 */
export function intakeGate(ctx: Context, onShed?: (priority: Priority) => void): IntakeGate {
  const reading = sharedBacklog(ctx);
  return createIntakeGate({
    marks: ctx.config.shedAt,
    maxPerSecond: ctx.config.intakeMaxPerSecond,
    onShed,
    async readBacklog() {
      const current = await reading();
      return current && { value: current.value?.untaken, at: current.at };
    },
    takeCeilingSlot: (max, always) =>
      takeSlot(ctx.coord, `${ctx.config.queuePrefix}:ratelimit:intake`, CEILING_WINDOW_MS, max, always),
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
