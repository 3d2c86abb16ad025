import type { Context } from '../context.js';
import { allCarriers } from '../db/carriers.js';
import { DEFAULT_JOB_SECONDS } from '../domain/forecast.js';
import type { Priority } from '../domain/priority.js';
import { promiseAt, stageThroughput, transitHoursFor, waitAheadMs } from '../domain/promise.js';
import {
  BACKLOG_STAGES,
  cachedReader,
  sharedBacklog,
  stageWorkers,
  warnSometimes,
  type BacklogStage,
  type Reading,
} from '../queues/backlog.js';
import { stageJobSeconds } from './forecast.js';

type Throughput = Record<BacklogStage, number>;

/**
 * How long one throughput reading is used. It changes as replicas come and go and job durations
 * drift, i.e. over seconds to minutes, and its read is the costly one (stageJobSeconds reads the
 * latest completed jobs of every queue; worker counts are a CLIENT LIST), so it is read far less
 * often than the backlog, which moves with every order.
 */
export const THROUGHPUT_CACHE_MS = 10_000;

/** Throughput before any reading (or Redis away): one replica at the default job durations. */
const unmeasured = (ctx: Pick<Context, 'config'>): Throughput =>
  Object.fromEntries(
    BACKLOG_STAGES.map((stage) => [
      stage,
      stageThroughput({
        workers: 1,
        concurrency: ctx.config.workerConcurrency,
        jobSeconds: DEFAULT_JOB_SECONDS[stage],
      }),
    ]),
  ) as Throughput;

const throughputReaders = new WeakMap<Context, () => Promise<Reading<Throughput> | undefined>>();

/** Each stage's throughput (domain/promise.ts stageThroughput), measured in Redis, cached per process. */
function throughputOf(ctx: Context): () => Promise<Reading<Throughput> | undefined> {
  let reader = throughputReaders.get(ctx);
  if (!reader) {
    reader = cachedReader(
      async () => {
        if (!ctx.queues.backend.connected()) throw new Error('Redis is not connected');
        const [seconds, workers] = await Promise.all([stageJobSeconds(ctx), stageWorkers(ctx)]);
        return Object.fromEntries(
          BACKLOG_STAGES.map((stage) => [
            stage,
            stageThroughput({
              workers: workers[stage],
              concurrency: ctx.config.workerConcurrency,
              jobSeconds: seconds[stage],
            }),
          ]),
        ) as Throughput;
      },
      {
        cacheMs: THROUGHPUT_CACHE_MS,
        timeoutMs: 5_000,
        onError: warnSometimes(ctx.log, 'cannot measure the stage throughput: promising at the default'),
      },
    );
    throughputReaders.set(ctx, reader);
  }
  return reader;
}

/**
 * The delivery promise of a new order (contract: POST /v1/orders `promisedBy`): when it can
 * start — now, or for an order only a restock can fill, that restock's ETA — + the wait ahead
 * of it (the allocation and dispatch backlog of its class and above ÷ each stage's measured
 * throughput, domain/promise.ts waitAheadMs) + the region's transit time.
 *
 * The readings are this process's cached ones (the backlog shared with load shedding), and an
 * order waits at most ~50 ms for them. Redis away or not read yet: no wait is added (intake
 * works as without queues); throughput not measured yet: one replica at default job durations.
 */
export async function promiseFor(
  ctx: Context,
  order: { now: Date; priority: Priority; region: string; restockEta: Date | null },
): Promise<Date> {
  const { now, priority, region, restockEta } = order;
  // From this process's cache (ctx.carrierCache), not a read of the table per order.
  const carriers = ctx.carrierCache ? await ctx.carrierCache.get() : await allCarriers(ctx.db);
  // Every carrier's booking queue known to this process, so the dispatch backlog counts them all.
  for (const carrier of carriers) ctx.queues.carrierQueue(carrier.id);
  const [backlog, throughput] = await Promise.all([sharedBacklog(ctx)(), throughputOf(ctx)()]);
  const rates = throughput?.value ?? unmeasured(ctx);
  const waitMs = backlog?.value
    ? waitAheadMs(
        priority,
        BACKLOG_STAGES.map((stage) => ({ backlog: backlog.value!.stages[stage], throughput: rates[stage] })),
      )
    : 0;
  return promiseAt(
    restockEta && restockEta > now ? restockEta : now,
    transitHoursFor(carriers, region, ctx.config.defaultTransitHours),
    waitMs,
  );
}
