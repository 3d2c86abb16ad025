import { eligibleCarriers, type CarrierCandidate } from './carrier-choice.js';
import { PRIORITIES, type Priority } from './priority.js';

const HOUR = 3_600_000;

/**
 * Transit time to promise for a region: the first carrier that would be tried, or the
 * default when it does not say (or when no carrier serves the region yet).
 */
export function transitHoursFor(carriers: CarrierCandidate[], region: string, defaultHours: number): number {
  const first = eligibleCarriers(carriers, region)[0];
  return first?.transitHours ?? defaultHours;
}

/**
 * The delivery promise given at intake: when the order starts (now, or a restock's ETA) + the
 * wait ahead of it in the engine's queues (waitAheadMs) + the region's transit time.
 */
export function promiseAt(receivedAt: Date, transitHours: number, waitMs = 0): Date {
  return new Date(receivedAt.getTime() + waitMs + transitHours * HOUR);
}

/** Jobs of one stage not finished yet, by the class of their order. */
export type ClassCounts = Record<Priority, number>;

/** One stage (allocation, dispatch) as the promise sees it. */
export interface StageLoad {
  /** Jobs waiting for or being worked on by the stage, by class (queues/backlog.ts attributes them). */
  backlog: ClassCounts;
  /** Jobs per second the stage completes across all its workers (stageThroughput). */
  throughput: number;
}

/**
 * The cap on the wait a promise adds: a day. A wait longer than that means the engine is far
 * past its load-shedding watermarks or the throughput reading is wrong (a stage with no worker
 * for hours); promising weeks ahead would be a guess either way, and the customer is told when
 * the promise moves (a delay notice), so the promise stays bounded.
 */
export const MAX_WAIT_MS = 24 * HOUR;

/**
 * The wait ahead of an order of class `priority`, in ms: Σ over the stages of (the stage's
 * backlog of this class and every higher one ÷ the stage's throughput), capped at MAX_WAIT_MS.
 * Each stage takes essential work before express and express before standard, so an order
 * waits only for the work of its class and above: an essential order's wait ignores the
 * express and standard backlog. (The minimum shares a lower class keeps under a backlog slow
 * the higher classes a little; that is not modelled: the shares are small and the cap bounds
 * any error.) A stage with a non-positive or non-finite throughput cannot drain what is ahead:
 * its wait is the cap. Nothing ahead waits nothing, whatever the throughput.
 */
export function waitAheadMs(priority: Priority, stages: readonly StageLoad[]): number {
  const rank = PRIORITIES.indexOf(priority);
  let total = 0;
  for (const stage of stages) {
    const ahead = PRIORITIES.slice(0, rank + 1).reduce((n, p) => n + Math.max(0, stage.backlog[p] || 0), 0);
    if (ahead === 0) continue;
    total +=
      Number.isFinite(stage.throughput) && stage.throughput > 0
        ? (ahead / stage.throughput) * 1000
        : MAX_WAIT_MS;
    if (total >= MAX_WAIT_MS) return MAX_WAIT_MS;
  }
  return Math.round(total);
}

/**
 * A stage's throughput in jobs per second: its workers (BullMQ worker connections on the
 * stage's queue, across every process) × WORKER_CONCURRENCY ÷ the mean job duration measured
 * from its recently completed jobs (steps/forecast.ts stageJobSeconds, DEFAULT_JOB_SECONDS
 * when none completed). This is the stage's capacity, which is how fast it drains a backlog
 * (the case where the wait matters); a rate of completions would instead measure the intake
 * whenever the stage keeps up, and promise a burst far too late.
 *
 * No worker serves the stage right now (an API-only deployment before its workers start, or
 * every replica restarting): one replica is assumed, as the forecast's replica recommendation
 * does (at least one per queue): a backlog waits for a worker to come, and promising "never"
 * would help nobody.
 */
export function stageThroughput(opts: { workers: number; concurrency: number; jobSeconds: number }): number {
  const workers = Math.max(1, Number.isFinite(opts.workers) ? opts.workers : 1);
  return (workers * opts.concurrency) / Math.max(opts.jobSeconds, 0.001);
}
