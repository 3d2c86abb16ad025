/**
 * Load shedding, as pure rules over plain numbers: the intake backlog and the watermarks → which
 * priorities are refused, and how long a refused shop should wait.
 *
 * The backlog is the number of jobs waiting to be taken by the engine's own stage workers
 * (waiting, prioritized, delayed — not active) in the `allocation` and `dispatch` stage queues:
 * each accepted order becomes one allocation job, then one dispatch job, so their sum is the work
 * the engine already promised and has not started. Per-carrier booking queues (`dispatch.{id}`)
 * are left out: their pace is the carrier's rate limit, not our capacity, and a carrier outage is
 * handled by failover, not by refusing new orders.
 *
 * Watermarks: once the backlog reaches `standard`, standard orders are refused; at `express`,
 * express too; at `essential` (the hard limit, SHED_ALL_AT), every order. So standard is shed
 * before express, express before essential (contract: POST /v1/orders, Overloaded).
 */
import { PRIORITIES, type Priority } from './priority.js';

/** The backlog at which each priority starts to be refused (standard ≤ express ≤ essential). */
export type Watermarks = Record<Priority, number>;

/** true: an order of this priority is refused (503 overloaded) at this backlog. */
export function isShed(priority: Priority, backlog: number, marks: Watermarks): boolean {
  return backlog >= marks[priority];
}

/** The priorities refused at this backlog, highest first (empty: every order is taken). */
export function shedPriorities(backlog: number, marks: Watermarks): Priority[] {
  return PRIORITIES.filter((p) => isShed(p, backlog, marks));
}

/** Retry-After bounds, in seconds. */
export const RETRY_AFTER_MIN_S = 1;
export const RETRY_AFTER_MAX_S = 60;
/** Retry-After when no drain was measured (the backlog has not been seen falling). */
export const RETRY_AFTER_UNMEASURED_S = 10;

/**
 * Seconds until the backlog falls below the priority's watermark at the measured drain (jobs per
 * second), between 1 and 60; with no drain measured, a fixed 10 s.
 */
export function retryAfterSeconds(
  priority: Priority,
  backlog: number,
  marks: Watermarks,
  drainPerSecond: number | undefined,
): number {
  const over = backlog - marks[priority] + 1;
  if (drainPerSecond === undefined || !(drainPerSecond > 0)) return RETRY_AFTER_UNMEASURED_S;
  const seconds = Math.ceil(over / drainPerSecond);
  return Math.min(RETRY_AFTER_MAX_S, Math.max(RETRY_AFTER_MIN_S, seconds));
}

export interface BacklogSample {
  backlog: number;
  /** ms (any clock, the same for every sample) */
  at: number;
}

/** Weight of the newest observation in the smoothed drain. */
const DRAIN_WEIGHT = 0.3;

/**
 * The drain (jobs per second the workers take) from two backlog samples, smoothed with the
 * previous estimate. Only a falling backlog says something: it fell by at least what the workers
 * took minus what was added, so its fall is a lower bound of the drain. A flat or rising backlog
 * keeps the previous estimate (the workers may still be draining while intake adds as much).
 */
export function nextDrain(
  previous: BacklogSample | undefined,
  current: BacklogSample,
  estimate: number | undefined,
): number | undefined {
  if (!previous || current.at <= previous.at || current.backlog >= previous.backlog) return estimate;
  const observed = ((previous.backlog - current.backlog) * 1000) / (current.at - previous.at);
  return estimate === undefined ? observed : estimate + DRAIN_WEIGHT * (observed - estimate);
}
