import type { Queue } from 'bullmq';
import type { Context } from '../context.js';
import { allCarriers } from '../db/carriers.js';
import { windowCounts } from '../db/kpis.js';
import {
  rates,
  scorecard,
  windowBounds,
  type KpiWindow,
  type Rates,
  type Scorecard,
} from '../domain/kpis.js';
import { QUEUE_NAMES } from '../queues/topology.js';

/** Jobs that are still to be done or being done: what a queue's depth counts. */
const DEPTH_STATES = ['waiting', 'prioritized', 'delayed', 'active'] as const;

async function depthOf(queue: Pick<Queue, 'getJobCounts'>): Promise<number> {
  const counts = await queue.getJobCounts(...DEPTH_STATES);
  return DEPTH_STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
}

/**
 * Each stage's depth (waiting + prioritized + delayed + active), summed over the queues it is split
 * into (notification: one per channel); booking calls wait in one queue per carrier, which count as
 * dispatch's (as in surgeline_queue_jobs). Redis away: no depths rather than a hang or an error
 * (BullMQ would wait for Redis to come back); a queue whose count fails is left out.
 */
export async function queueDepths(ctx: Pick<Context, 'queues' | 'db'>): Promise<Record<string, number>> {
  if (!ctx.queues.backend.connected()) return {};
  const depths: Record<string, number> = {};
  await Promise.all(
    QUEUE_NAMES.map(async (name) => {
      try {
        const each = await Promise.all(ctx.queues.queuesOf(name).map(depthOf));
        depths[name] = each.reduce((sum, n) => sum + n, 0);
      } catch {
        // Redis went away mid-count: this queue is left out.
      }
    }),
  );
  if (depths.dispatch !== undefined) {
    try {
      const carriers = await allCarriers(ctx.db);
      const each = await Promise.all(carriers.map((c) => depthOf(ctx.queues.carrierQueue(c.id))));
      depths.dispatch += each.reduce((sum, n) => sum + n, 0);
    } catch {
      // The database or Redis is away: the stage queue's own depth stands alone.
    }
  }
  return Object.fromEntries(QUEUE_NAMES.filter((n) => n in depths).map((n) => [n, depths[n]]));
}

/** GET /v1/admin/kpis: the scorecard of the orders closed in the window ending now. */
export async function scorecardOf(
  ctx: Pick<Context, 'queues' | 'db'>,
  window: KpiWindow,
  now = new Date(),
): Promise<Scorecard> {
  const [counts, depths] = await Promise.all([
    windowCounts(ctx.db, windowBounds(window, now)),
    queueDepths(ctx),
  ]);
  return scorecard({ window, ...counts, queueDepths: depths });
}

/** The three rates alone (the gauges): no breakdown, percentiles, intake count or queues. */
export async function scorecardRates(
  ctx: Pick<Context, 'db'>,
  window: KpiWindow,
  now = new Date(),
): Promise<Rates> {
  const counts = await windowCounts(ctx.db, windowBounds(window, now), { ratesOnly: true });
  return rates(counts.total);
}
