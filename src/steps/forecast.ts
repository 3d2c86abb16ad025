import type { Job, Queue } from 'bullmq';
import type { Context } from '../context.js';
import { allCarriers } from '../db/carriers.js';
import { intakePerMinute, recentWork } from '../db/forecast.js';
import {
  DEFAULT_HEADROOM,
  DEFAULT_HORIZON_MINUTES,
  DEFAULT_JOB_SECONDS,
  LOOKBACK_MINUTES,
  MINUTE_MS,
  denseSeries,
  forecast,
  jobsPerOrder,
  peakOf,
  perReplicaThroughput,
  recommendedReplicas,
  type ForecastPoint,
  type Stage,
} from '../domain/forecast.js';
import { QUEUE_NAMES } from '../queues/topology.js';

export interface ForecastReport {
  generatedAt: Date;
  horizonMinutes: number;
  points: ForecastPoint[];
  recommendedReplicas: Record<string, number>;
}

/** Completed jobs read per queue to measure a stage's mean job duration. */
const SAMPLE_JOBS = 50;
/** The jobs-per-order factors are measured over orders at least this old (the newest are under way). */
const SETTLED_MS = 10 * MINUTE_MS;

async function durationsOf(queue: Queue): Promise<number[]> {
  const jobs: Job[] = await queue.getJobs(['completed'], 0, SAMPLE_JOBS - 1);
  return jobs
    .filter((j) => j?.processedOn && j.finishedOn && j.finishedOn >= j.processedOn)
    .map((j) => (j.finishedOn! - j.processedOn!) / 1000);
}

/**
 * Each stage's mean job duration in seconds, from its queues' latest completed jobs in Redis
 * (shared by every worker process, so an API-only process measures the workers too; BullMQ keeps
 * completed jobs for an hour, up to 1,000 per queue). Dispatch counts its carrier queues' booking
 * calls with its routing jobs. A stage with no completed job, or Redis away: DEFAULT_JOB_SECONDS.
 */
export async function stageJobSeconds(ctx: Pick<Context, 'queues' | 'db'>): Promise<Record<Stage, number>> {
  const seconds: Record<Stage, number> = { ...DEFAULT_JOB_SECONDS };
  if (!ctx.queues.backend.connected()) return seconds;
  await Promise.all(
    QUEUE_NAMES.map(async (name) => {
      try {
        const queues = [...ctx.queues.queuesOf(name)];
        if (name === 'dispatch') {
          for (const c of await allCarriers(ctx.db)) queues.push(...ctx.queues.carrierQueue(c.id).all);
        }
        const all = (await Promise.all(queues.map(durationsOf))).flat();
        if (all.length > 0) seconds[name] = all.reduce((s, d) => s + d, 0) / all.length;
      } catch {
        // Redis or the database went away mid-read: this stage keeps its default.
      }
    }),
  );
  return seconds;
}

/**
 * GET /v1/admin/forecast: the intake per minute over the look-back (LOOKBACK_MINUTES, up to the
 * last whole minute), forecast over `horizonMinutes`; and per stage the replicas that keep up
 * with the forecast's peak × DEFAULT_HEADROOM at WORKER_CONCURRENCY jobs per replica.
 */
export async function forecastOf(
  ctx: Pick<Context, 'queues' | 'db' | 'config'>,
  horizonMinutes = DEFAULT_HORIZON_MINUTES,
  now = new Date(),
): Promise<ForecastReport> {
  const currentMinute = new Date(Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS);
  const lastMinute = new Date(currentMinute.getTime() - MINUTE_MS);
  const from = new Date(currentMinute.getTime() - LOOKBACK_MINUTES * MINUTE_MS);
  const [counts, work, seconds] = await Promise.all([
    intakePerMinute(ctx.db, { from, to: currentMinute }),
    recentWork(ctx.db, { from, to: new Date(now.getTime() - SETTLED_MS) }),
    stageJobSeconds(ctx),
  ]);
  const { points } = forecast(denseSeries(counts, lastMinute), now, horizonMinutes);
  const factors = jobsPerOrder(work);
  const throughput = Object.fromEntries(
    QUEUE_NAMES.map((q) => [
      q,
      perReplicaThroughput({
        concurrency: ctx.config.workerConcurrency,
        jobSeconds: seconds[q],
        jobsPerOrder: factors[q],
      }),
    ]),
  );
  return {
    generatedAt: now,
    horizonMinutes,
    points,
    recommendedReplicas: recommendedReplicas(peakOf(points), throughput, DEFAULT_HEADROOM),
  };
}
