import type { Worker } from 'bullmq';
import type { Context } from '../context.js';
import { allCarriers } from '../db/carriers.js';
import { carriersChannel } from '../queues/carrier-changes.js';
import { disconnectWorker } from '../queues/connection.js';
import { CARRIER_RATE_WINDOW_MS, carrierRateKey } from '../queues/topology.js';

/**
 * One worker per lane of each carrier (`dispatch.{carrierId}.{class}`), sharing a gate paced by
 * the carrier's `rateLimitPerSecond`: a booking is let through only when the carrier's sliding log
 * in Redis has room (the booking step takes that room right before its call), so the lanes share
 * the carrier's calls, across every replica, by class. The carriers table is read when a change
 * is announced on Redis and every `refreshMs` anyway: a new carrier gets its workers, and a limit
 * changed by PATCH takes effect at the next call, without a restart.
 */
export function startCarrierWorkers(
  ctx: Context,
  makeWorkers: (carrierId: string, pace: () => Promise<number>) => Worker[],
  refreshMs: number,
): { ready: Promise<void>; close(): Promise<void> } {
  // Each carrier's workers and its current limit, which their pace reads at every call: a PATCH
  // takes effect at the next call, without replacing the workers (and the jobs at their gate).
  const running = new Map<string, { workers: Worker[]; limit: { perSecond: number | null } }>();
  let stopped = false;

  const readCarriers = async () => {
    const carriers = await allCarriers(ctx.db);
    for (const carrier of carriers) {
      if (stopped) return;
      const perSecond = carrier.rateLimitPerSecond ?? null;
      const current = running.get(carrier.id);
      if (current) {
        if (current.limit.perSecond === perSecond) continue;
        current.limit.perSecond = perSecond;
        ctx.log.info({ carrierId: carrier.id, rateLimitPerSecond: perSecond }, 'carrier rate limit changed');
        continue;
      }
      const limit = { perSecond };
      const key = carrierRateKey(ctx.config.queuePrefix, carrier.id);
      const pace = () =>
        limit.perSecond ? ctx.coord.roomIn(key, CARRIER_RATE_WINDOW_MS, limit.perSecond) : Promise.resolve(0);
      running.set(carrier.id, { workers: makeWorkers(carrier.id, pace), limit });
    }
  };

  // One read at a time; a change announced during a read gets one more read after it.
  let reading: Promise<void> | null = null;
  let again = false;
  const refresh = (): Promise<void> => {
    if (reading) {
      again = true;
      return reading;
    }
    reading = (async () => {
      try {
        do {
          again = false;
          await readCarriers();
        } while (again && !stopped);
      } finally {
        reading = null;
      }
    })();
    return reading;
  };
  // Reconnects by itself; the periodic read covers the gap.
  const subscriber = ctx.coord.subscribe(carriersChannel(ctx.config.queuePrefix), {
    message: () => {
      if (!stopped)
        refresh().catch((error) =>
          ctx.log.warn({ err: error }, 'carrier workers: could not read carriers; will retry'),
        );
    },
  });

  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      refresh()
        .catch((error) =>
          ctx.log.warn({ err: error }, 'carrier workers: could not read carriers; will retry'),
        )
        .finally(schedule);
    }, refreshMs);
    timer.unref();
  };
  const ready = refresh()
    .catch((error) => ctx.log.warn({ err: error }, 'carrier workers: could not read carriers; will retry'))
    .finally(schedule);

  return {
    ready,
    async close() {
      stopped = true;
      clearTimeout(timer);
      subscriber.close();
      await ready;
      await reading;
      const force = !ctx.coord.connected();
      const all = [...running.values()].flatMap(({ workers }) => workers);
      await Promise.all(all.map((worker) => worker.close(force)));
      await Promise.all(all.map((worker) => disconnectWorker(worker)));
    },
  };
}
