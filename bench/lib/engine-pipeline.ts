import type postgres from 'postgres';
import { surgeOrders } from '../../src/demo/surge.js';
import type { RunningProcess } from '../../src/runtime.js';
import { adminCaller, seedBenchWorld, sleep } from './common.js';
import type { Outside } from './outside-client.js';

export interface PipelineRun {
  orders: number;
  /** First POST → the last order booked. */
  wallMs: number;
  /** The POSTs alone. */
  intakeMs: number;
  perSecond: number;
}

export interface EnginePipelineOptions {
  running: RunningProcess;
  /** The engine's base URL. */
  api: string;
  outside: Outside;
  /** A connection to the engine's database, to count booked orders. */
  check: postgres.Sql;
  adminToken: string;
  region: string;
  skus: string[];
  connections: number;
  timeoutMs: number;
  /** Idempotency keys of the runs start with it, so two runs never share one. */
  keyPrefix: string;
  /** Names the engine in errors. */
  label: string;
}

/**
 * The pipeline measurement on a running engine (bench/pipeline.ts, bench/queue-backends.ts): a
 * zero-latency carrier simulator without progress events, a shop with stock; each `run(count, tag)`
 * posts `count` orders from the outside process and waits until every one is booked (dispatched,
 * as the engine records it), polling the orders table every 50 ms.
 */
export async function enginePipeline(o: EnginePipelineOptions) {
  const carrier = await o.outside.call<{ url: string }>('carrier', {
    carrierId: 'bench',
    webhookSecret: 'bench-secret-1',
    eventsBaseUrl: o.api,
    progress: false,
  });
  const apiKey = await seedBenchWorld(adminCaller(o.running.app, o.adminToken), {
    carrierId: 'bench',
    carrierUrl: carrier.url,
    webhookSecret: 'bench-secret-1',
    region: o.region,
    skus: o.skus,
  });
  const booked = async () =>
    (
      await o.check`select count(*)::int as n from orders where status in ('dispatched', 'in_transit', 'delivered')`
    )[0].n as number;

  return {
    async run(count: number, tag: string): Promise<PipelineRun> {
      const before = await booked();
      const bodies = surgeOrders(count, o.skus, [o.region], tag.length + count);
      const start = performance.now();
      const posted = o.outside
        .call<{ wallMs: number; statuses: Record<string, number>; samples: object }>('post', {
          url: o.api,
          apiKey,
          bodies,
          keyPrefix: `${o.keyPrefix}-${tag}`,
          connections: o.connections,
        })
        .then((r) => {
          if ((r.statuses['202'] ?? 0) !== count)
            throw new Error(
              `${o.label}: intake answered ${JSON.stringify(r.statuses)}: ${JSON.stringify(r.samples)}`,
            );
          return performance.now() - start;
        });
      let intakeMs = NaN;
      posted.then(
        (ms) => (intakeMs = ms),
        () => undefined,
      );
      for (;;) {
        if ((await booked()) - before >= count) break;
        if (performance.now() - start > o.timeoutMs)
          throw new Error(`${o.label}: not every order booked after ${o.timeoutMs} ms`);
        await sleep(50);
      }
      const wallMs = performance.now() - start;
      await posted;
      return { orders: count, wallMs, intakeMs, perSecond: (count * 1000) / wallMs };
    },
  };
}
