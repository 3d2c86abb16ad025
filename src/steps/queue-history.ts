import type { Context } from '../context.js';
import { Ring } from '../domain/ring.js';
import { queueDepths } from './scorecard.js';

/** One reading of every stage's depth; `depths` is empty for a reading taken while Redis was away. */
export interface DepthSample {
  at: Date;
  depths: Record<string, number>;
}

export interface QueueHistory {
  readonly intervalMs: number;
  /** The readings of the last `windowMs`, oldest first; takes one first if the latest is older than the interval. */
  samples(now?: Date): Promise<DepthSample[]>;
  start(): void;
  stop(): void;
}

/** A reading every 15 s over the last hour: 240 readings at most, a few hundred Redis commands an hour. */
export const DEPTH_SAMPLE_MS = 15_000;
export const DEPTH_WINDOW_MS = 3_600_000;

/**
 * The queue depths of the last hour, as this API process sampled them (what the operations page
 * charts): a timer reads them every `intervalMs` into a ring buffer of one window's readings.
 * In memory, per process — a new process starts with an empty history; Redis keeps no history.
 */
export function createQueueHistory(
  ctx: Pick<Context, 'queues' | 'db'>,
  { intervalMs = DEPTH_SAMPLE_MS, windowMs = DEPTH_WINDOW_MS } = {},
): QueueHistory {
  const ring = new Ring<DepthSample>(Math.ceil(windowMs / intervalMs) + 1);
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;

  // One reading at a time: a slow Redis never piles readings up.
  const sample = () =>
    (reading ??= queueDepths(ctx)
      .catch(() => ({})) // queueDepths answers {} for Redis away; anything else is a gap too
      .then((depths) => ring.push({ at: new Date(), depths }))
      .finally(() => (reading = undefined)));

  return {
    intervalMs,
    async samples(now = new Date()) {
      const latest = ring.last();
      if (!latest || now.getTime() - latest.at.getTime() >= intervalMs) await sample();
      const from = now.getTime() - windowMs;
      return ring.toArray().filter((s) => s.at.getTime() >= from);
    },
    start() {
      if (timer) return;
      timer = setInterval(() => void sample(), intervalMs);
      timer.unref(); // never what keeps a process alive
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
