/**
 * The surge benchmark (issue "Surge control", item 8; part of `npm run bench`, last). A burst of
 * BENCH_SURGE_ORDERS (50,000) orders — 2% essential, 18% express, 80% standard, randomly
 * interleaved (seeded) — is posted as fast as it goes through the real API (POST /v1/orders/batch,
 * up to 500 orders a request, BENCH_SURGE_IN_FLIGHT requests at once) into the whole engine
 * running in-process (`startProcess('all')`) on a fresh PostgreSQL database, with one carrier
 * simulator answering at once and sending no progress events (the measure is received →
 * dispatched). Once every accepted order is dispatched, the engine's own records (order_events)
 * tell:
 *   - orders lost: answered 202 but missing, or not dispatched by the time bound (must be 0);
 *   - received → dispatched p50/p99 per class (essential p99 must stay ≤ 1 s);
 *   - drain time, first post → last dispatched;
 *   - each class's share of the allocations and of the dispatches, per 1-second bucket, over the
 *     seconds the stage was saturated (every class had orders received and not yet taken by the
 *     stage, at both edges of the second): mean and min for standard and express; also standard's
 *     share while a higher class waited, and express's while essential waited (the conditions under
 *     which the contract's minimum shares, 10% and 20%, apply);
 *   - Redis memory: used_memory sampled each second (rise over the start) and used_memory_peak's
 *     rise (the server is shared, so it is only indicative).
 * Scenarios, each with its own engine, database (bench_surge_<pid>_<run>) and QUEUE_PREFIX:
 *   - intake:    the same burst posted to an API-only process (no workers): the time merely to post
 *                it, the baseline of the drain ratio;
 *   - spread:    the burst from 20 shops, each order's shop drawn at random;
 *   - one-shop:  the same burst, one shop posting 95% of it and 19 shops sharing the other 5%:
 *                the small shops' p99 received → dispatched against the big shop's;
 *   - backlog:   the burst posted to an API-only process, then a worker process (same database
 *                and prefix) drains it: every stage starts saturated, which posting through one
 *                process's API may never achieve when intake is slower than the pipeline.
 * Ratios, not milliseconds, compare across machines: drain ÷ intake-only post time, each class's
 * p99 ÷ the drain, small shops' p99 ÷ the big shop's (bench/README.md says why).
 *
 * Load shedding is set out of the way (SHED_* at their highest), the shops' rate limit at
 * 1,000,000/min; any order refused anyway is counted by its answer's status.
 * BENCH_SURGE_TIMEOUT_MS (30 min) bounds the whole bench: past it the figures cover what finished
 * and the process exits 1.
 *
 * Env: BENCH_SURGE_ORDERS (50000), BENCH_SURGE_BATCH (500 orders a request), BENCH_SURGE_IN_FLIGHT (4), BENCH_SURGE_TIMEOUT_MS (1800000),
 * BENCH_SURGE_SERVER_URL (postgres://postgres@127.0.0.1:5432/postgres), BENCH_SURGE_SCENARIOS
 * (intake,spread,one-shop,backlog), BENCH_SURGE_SEED (2026), REDIS_URL; WORKER_CONCURRENCY and the
 * MIN_SHARE_* settings pass through to the engine. Writes bench/results/surge.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { orderEvents, orders } from '../src/db/schema.js';
import { startCarrierSimulator, type CarrierSimulator } from '../src/demo/carrier-simulator.js';
import { percentile } from '../src/demo/report.js';
import { seededRandom } from '../src/demo/surge.js';
import { startProcess, type RunningProcess } from '../src/runtime.js';

const env = process.env;
const N = Number(env.BENCH_SURGE_ORDERS ?? 50_000);
const IN_FLIGHT = Number(env.BENCH_SURGE_IN_FLIGHT ?? 4);
const TIMEOUT_MS = Number(env.BENCH_SURGE_TIMEOUT_MS ?? 30 * 60_000);
const SEED = Number(env.BENCH_SURGE_SEED ?? 2026);
const SERVER_URL = env.BENCH_SURGE_SERVER_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const SCENARIOS = (env.BENCH_SURGE_SCENARIOS ?? 'intake,spread,one-shop,backlog')
  .split(',')
  .map((s) => s.trim());
const KEEP = env.BENCH_SURGE_KEEP === '1';
const ADMIN = 'bench-admin-token';
const BATCH = Number(env.BENCH_SURGE_BATCH ?? 500);
const SHOPS = 20;
const BIG_SHOP_SHARE = 0.95;
const MIX = { essential: 0.02, express: 0.18 }; // standard: the rest
const CLASSES = ['essential', 'express', 'standard'] as const;
type Class = (typeof CLASSES)[number];
const RUN_ID = randomBytes(4).toString('hex');
const REGION = 'bench-surge';
const SKUS = ['SURGE-A', 'SURGE-B', 'SURGE-C'];
const ESSENTIAL_P99_BOUND_MS = 1000;

const startedAt = Date.now();
const deadline = startedAt + TIMEOUT_MS;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Body {
  idempotencyKey: string;
  externalId: string;
  priority: Class;
  customer: { name: string; phone: string; email: string };
  shippingAddress: { region: string; line1: string; city: string; postalCode: string; country: string };
  items: { sku: string; quantity: number }[];
  contactless: boolean;
  locale: 'zh-CN' | 'en';
}

/** The burst: the same orders (classes, items) in every scenario; only the shop of each differs. */
function burst(count: number): { bodies: Omit<Body, 'idempotencyKey'>[]; shopDraw: number[] } {
  const random = seededRandom(SEED);
  const bodies = Array.from({ length: count }, (_, i) => {
    const roll = random();
    const priority: Class =
      roll < MIX.essential ? 'essential' : roll < MIX.essential + MIX.express ? 'express' : 'standard';
    const lines = 1 + Math.floor(random() * 2);
    const chosen = [
      ...new Set(Array.from({ length: lines }, () => SKUS[Math.floor(random() * SKUS.length)])),
    ];
    return {
      externalId: `SURGE-${String(i + 1).padStart(6, '0')}`,
      priority,
      customer: {
        name: `Customer ${i + 1}`,
        phone: `+86138${String(10_000_000 + i).slice(-8)}`,
        email: `c${i + 1}@example.com`,
      },
      shippingAddress: {
        region: REGION,
        line1: `${i + 1} Surge Road`,
        city: 'Shanghai',
        postalCode: '200000',
        country: 'CN',
      },
      items: chosen.map((sku) => ({ sku, quantity: 1 + Math.floor(random() * 3) })),
      contactless: random() < 0.7,
      locale: (random() < 0.8 ? 'zh-CN' : 'en') as Body['locale'],
    };
  });
  // A second stream for the shops, so the orders themselves are the same whoever posts them.
  const shopRandom = seededRandom(SEED + 1);
  return { bodies, shopDraw: bodies.map(() => shopRandom()) };
}

interface Summary {
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}
const summary = (values: number[]): Summary => ({
  count: values.length,
  p50Ms: percentile(values, 50),
  p99Ms: percentile(values, 99),
  maxMs: values.length ? values.reduce((a, b) => Math.max(a, b), -Infinity) : null,
});

interface Shares {
  /** Seconds counted. */
  seconds: number;
  /** Per class: mean and min of its share of the stage's completions over those seconds. */
  mean: Record<Class, number | null>;
  min: Record<Class, number | null>;
  /** The stage's completions per second over those seconds (mean). */
  perSecond: number | null;
}

interface StageShares {
  /** Every class had work waiting for the stage at both edges of the second (the brief's saturated). */
  saturated: Shares;
  /** Standard waited and so did express or essential: standard's minimum share (10%) applies. */
  standardBehindHigher: Shares;
  /** Express and essential both waited: express's minimum share (20%) applies. */
  expressBehindEssential: Shares;
  /** Per second from the first post: completions per class, and the backlog per class at the second's end. */
  timeline: { second: number; done: Record<Class, number>; backlogAtEnd: Record<Class, number> }[];
}

interface RunResult {
  run: string;
  what: string;
  orders: number;
  /** Requests answered, orders accepted (202, or 200 for a replayed key) and refused by status. */
  requests: number;
  accepted: number;
  refused: Record<string, number>;
  requestErrors: number;
  /** First post sent → last batch answered. */
  postMs: number;
  postOrdersPerSecond: number;
  timedOut: boolean;
  /** intake only: no workers, nothing is drained. */
  drained?: {
    /** Answered 202/200 but no row, or not dispatched (nor further) by the time bound. */
    lost: number;
    missingRows: number;
    notDispatched: number;
    failed: number;
    byStatus: Record<string, number>;
    /** First post sent → last `dispatched` event recorded. */
    drainMs: number | null;
    /** drainMs ÷ the intake-only post time (the baseline), when that ran. */
    drainVsIntake: number | null;
    /** drainMs ÷ this run's own post time. */
    drainVsPost: number | null;
    receivedToDispatched: Record<Class | 'all', Summary>;
    /** Each class's p99 ÷ drainMs. */
    p99VsDrain: Record<Class, number | null>;
    receivedToAllocated: Record<Class, Summary>;
    essentialP99WithinBound: boolean | null;
    allocationShares: StageShares;
    dispatchShares: StageShares;
    /** one-shop: the big shop's orders vs the 19 small shops' (all classes and standard only). */
    shops?: {
      big: { all: Summary; standard: Summary };
      small: { all: Summary; standard: Summary };
      smallP99VsBig: { all: number | null; standard: number | null };
    };
  };
  /** The engine's event loop (bench client included: one process), over the run. */
  eventLoopDelayMs: { mean: number; p99: number; max: number };
  /** Mean time a job ran once admitted (surgeline_job_duration_seconds sum ÷ count), per queue, ms. */
  jobMeanMs: Record<string, number>;
  /**
   * From the engine's log: enqueues skipped because the request's enqueue deadline had passed
   * ("enqueue deadline passed", one per order or notification batch), enqueues that failed, and
   * jobs the reconciler re-enqueued because they were missing from Redis.
   */
  engineLog: { enqueueDeadlinePassed: number; enqueueFailed: number; reconcilerRequeued: number };
  redis: { usedMemoryStart: number; usedMemoryMax: number; usedMemoryRise: number; peakRise: number };
}

function shopIndexes(run: string, shopDraw: number[]): number[] {
  if (run === 'one-shop')
    return shopDraw.map((r) =>
      r < BIG_SHOP_SHARE
        ? 0
        : 1 + Math.min(SHOPS - 2, Math.floor(((r - BIG_SHOP_SHARE) / (1 - BIG_SHOP_SHARE)) * (SHOPS - 1))),
    );
  return shopDraw.map((r) => Math.min(SHOPS - 1, Math.floor(r * SHOPS)));
}

/**
 * The burst as requests: the interleaved stream is cut into chunks of 500 and each chunk's orders
 * go in one batch per shop, so a small shop's orders are posted where they fall in the stream
 * (not saved up until it has 500), and the big shop's batches stay near 500.
 */
function batches(bodies: Omit<Body, 'idempotencyKey'>[], shops: number[], tag: string) {
  const out: { shop: number; orders: Body[] }[] = [];
  for (let start = 0; start < bodies.length; start += BATCH) {
    const byShop = new Map<number, Body[]>();
    for (let i = start; i < Math.min(bodies.length, start + BATCH); i++) {
      const list = byShop.get(shops[i]) ?? [];
      list.push({ idempotencyKey: `${tag}-${i}`, ...bodies[i] });
      byShop.set(shops[i], list);
    }
    for (const [shop, list] of byShop) out.push({ shop, orders: list });
  }
  return out;
}

async function redisMemory(redis: Redis): Promise<{ used: number; peak: number }> {
  const info = await redis.info('memory');
  const field = (name: string) =>
    Number(/^(\w+):(\d+)/m.exec(info.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? 0);
  return { used: field('used_memory'), peak: field('used_memory_peak') };
}

async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) removed += await redis.del(...keys);
  } while (cursor !== '0');
  return removed;
}

/** Shares of a stage's completions per 1-second bucket, from the events (ms since the first post). */
function stageShares(
  received: { cls: Class; at: number }[],
  done: { cls: Class; at: number }[],
): StageShares {
  const end = Math.max(0, ...done.map((d) => d.at), ...received.map((r) => r.at));
  const seconds = Math.floor(end / 1000) + 1;
  const zero = () => ({ essential: 0, express: 0, standard: 0 }) as Record<Class, number>;
  // Cumulative received and done per class at each second's edge (edge k = k s after the first post).
  const rcv = Array.from({ length: seconds + 1 }, zero);
  const dn = Array.from({ length: seconds + 1 }, zero);
  const perSecond = Array.from({ length: seconds }, zero);
  for (const r of received) rcv[Math.min(seconds, Math.floor(r.at / 1000) + 1)][r.cls]++;
  for (const d of done) {
    const k = Math.min(seconds - 1, Math.floor(d.at / 1000));
    perSecond[k][d.cls]++;
    dn[k + 1][d.cls]++;
  }
  for (let k = 1; k <= seconds; k++)
    for (const c of CLASSES) {
      rcv[k][c] += rcv[k - 1][c];
      dn[k][c] += dn[k - 1][c];
    }
  const backlog = (k: number, c: Class) => rcv[k][c] - dn[k][c];
  // A class waits through second k if it had work received and not yet taken at both edges.
  const waits = (k: number, c: Class) => backlog(k, c) > 0 && backlog(k + 1, c) > 0;
  const measure = (pick: (k: number) => boolean): Shares => {
    const picked: Record<Class, number[]> = { essential: [], express: [], standard: [] };
    let total = 0;
    let n = 0;
    for (let k = 0; k < seconds; k++) {
      const all = CLASSES.reduce((s, c) => s + perSecond[k][c], 0);
      if (all === 0 || !pick(k)) continue;
      n++;
      total += all;
      for (const c of CLASSES) picked[c].push(perSecond[k][c] / all);
    }
    const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);
    const min = (v: number[]) => (v.length ? Math.min(...v) : null);
    return {
      seconds: n,
      mean: {
        essential: mean(picked.essential),
        express: mean(picked.express),
        standard: mean(picked.standard),
      },
      min: { essential: min(picked.essential), express: min(picked.express), standard: min(picked.standard) },
      perSecond: n ? total / n : null,
    };
  };
  return {
    saturated: measure((k) => CLASSES.every((c) => waits(k, c))),
    standardBehindHigher: measure(
      (k) => waits(k, 'standard') && (waits(k, 'express') || waits(k, 'essential')),
    ),
    expressBehindEssential: measure((k) => waits(k, 'express') && waits(k, 'essential')),
    timeline: perSecond.map((d, k) => ({
      second: k,
      done: d,
      backlogAtEnd: {
        essential: backlog(k + 1, 'essential'),
        express: backlog(k + 1, 'express'),
        standard: backlog(k + 1, 'standard'),
      },
    })),
  };
}

async function runScenario(
  run: string,
  count: number,
  admin: postgres.Sql,
  intakeMs: number | null,
): Promise<RunResult> {
  const tag = `${RUN_ID}-${run}`;
  const prefix = `surgeline-bench-surge-${tag}`;
  const dbName = `bench_surge_${process.pid}_${run.replace(/\W/g, '_')}`;
  const intakeOnly = run === 'intake';
  // backlog: the burst is posted to an API-only process first, then a worker process drains it.
  const backlog = run === 'backlog';
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${dbName}`;
  const config = loadConfig({
    ...env,
    DATABASE_URL: url.toString(),
    QUEUE_PREFIX: prefix,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: env.LOG_LEVEL ?? 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    MIGRATE_ON_START: '1',
    SHED_STANDARD_AT: '100000000',
    SHED_EXPRESS_AT: '100000000',
    SHED_ALL_AT: '100000000',
  });
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
  // The engine logs at debug into a counter: the lines that say work went to the reconciler are
  // counted; errors and fatal lines still reach stderr.
  const engineLog = { enqueueDeadlinePassed: 0, enqueueFailed: 0, reconcilerRequeued: 0 };
  const log = createLogger('debug', {
    write(line: string) {
      if (line.includes('enqueue deadline passed')) engineLog.enqueueDeadlinePassed++;
      else if (line.includes('enqueue failed')) engineLog.enqueueFailed++;
      else if (line.includes('reconciler re-enqueued'))
        engineLog.reconcilerRequeued += Number(/"requeued":(\d+)/.exec(line)?.[1] ?? 0);
      if (/"level":(50|60)/.test(line)) process.stderr.write(line);
    },
  });
  let running: RunningProcess | undefined;
  let workerProcess: RunningProcess | undefined;
  let carrier: CarrierSimulator | undefined;
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  try {
    running = await startProcess(intakeOnly || backlog ? 'api' : 'all', config, { log });
    await running.ready;
    const { app, ctx } = running;
    const api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const adminCall = async (method: 'POST' | 'PUT', path: string, payload: object) => {
      const response = await app.inject({
        method,
        url: path,
        headers: { authorization: `Bearer ${ADMIN}` },
        payload,
      });
      if (response.statusCode >= 300)
        throw new Error(`${method} ${path} → ${response.statusCode}: ${response.body}`);
      return response.json() as Record<string, unknown>;
    };
    const carrierId = `surge-${tag}`;
    carrier = await startCarrierSimulator({
      carrierId,
      webhookSecret: 'bench-surge-secret',
      eventsBaseUrl: api,
      progress: false,
    });
    await adminCall('POST', '/v1/admin/carriers', {
      id: carrierId,
      name: 'Bench surge',
      kind: 'http',
      baseUrl: carrier.url,
      webhookSecret: 'bench-surge-secret',
      regions: ['*'],
      rank: 1,
    });
    const keys: string[] = [];
    for (let s = 0; s < SHOPS; s++) {
      const shop = (await adminCall('POST', '/v1/admin/shops', {
        name: `Surge shop ${s}`,
        rateLimitPerMinute: 1_000_000,
      })) as { apiKey: string };
      keys.push(shop.apiKey);
    }
    await adminCall('POST', '/v1/admin/warehouses', { id: `wh-${tag}`, name: 'Surge', region: REGION });
    for (const sku of SKUS)
      await adminCall('PUT', '/v1/admin/inventory', {
        warehouseId: `wh-${tag}`,
        sku,
        quantity: count * 6 + 1000,
      });
    const waitForBookingWorker = async () => {
      // The carrier's booking workers start on the next carriers refresh: wait, so the first
      // orders do not count that wait.
      const by = Date.now() + 15_000;
      while ((await ctx.queues.carrierQueue(carrierId).getWorkersCount()) === 0) {
        if (Date.now() > by) throw new Error(`no booking worker for ${carrierId} after 15 s`);
        await sleep(50);
      }
    };
    if (!intakeOnly && !backlog) await waitForBookingWorker();

    const { bodies, shopDraw } = burst(count);
    const shops = shopIndexes(run, shopDraw);
    const requests = batches(bodies, shops, tag);
    const loop = monitorEventLoopDelay({ resolution: 20 });
    loop.enable();
    const memStart = await redisMemory(redis);
    let memMax = memStart.used;
    let peakMax = memStart.peak;
    sampler = (async () => {
      while (sampling) {
        const m = await redisMemory(redis).catch(() => undefined);
        if (m) {
          memMax = Math.max(memMax, m.used);
          peakMax = Math.max(peakMax, m.peak);
        }
        await sleep(1000);
      }
    })();

    // Post the burst, IN_FLIGHT requests at a time; a request that fails outright is sent again
    // (same keys: the engine answers the same orders).
    const ids: string[] = [];
    const refused: Record<string, number> = {};
    let requestErrors = 0;
    let answered = 0;
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < requests.length && Date.now() < deadline) {
          const { shop, orders: list } = requests[next++];
          for (let attempt = 1; ; attempt++) {
            try {
              const response = await fetch(`${api}/v1/orders/batch`, {
                method: 'POST',
                headers: { authorization: `Bearer ${keys[shop]}`, 'content-type': 'application/json' },
                body: JSON.stringify({ orders: list }),
              });
              const text = await response.text();
              if (response.status !== 200)
                throw new Error(`batch answered ${response.status}: ${text.slice(0, 200)}`);
              answered++;
              for (const r of (JSON.parse(text) as { results: { status: number; id?: string }[] }).results) {
                if ((r.status === 202 || r.status === 200) && r.id) ids.push(r.id);
                else refused[r.status] = (refused[r.status] ?? 0) + 1;
              }
              break;
            } catch (error) {
              requestErrors++;
              if (attempt >= 5 || Date.now() >= deadline) {
                console.error(`${run}: a batch of ${list.length} gave up: ${(error as Error).message}`);
                refused.request_failed = (refused.request_failed ?? 0) + list.length;
                break;
              }
              await sleep(500 * attempt);
            }
          }
        }
      }),
    );
    const postMs = Date.now() - t0;
    let timedOut = ids.length + Object.values(refused).reduce((a, b) => a + b, 0) < count;
    console.log(`${run}: posted ${ids.length}/${count} accepted in ${(postMs / 1000).toFixed(1)} s`);

    let drained: RunResult['drained'];
    if (backlog && Date.now() < deadline) {
      workerProcess = await startProcess('worker', config, { log });
      await workerProcess.ready;
      await waitForBookingWorker();
      console.log(`${run}: workers started ${((Date.now() - t0) / 1000).toFixed(1)} s after the first post`);
    }
    if (!intakeOnly) {
      // Wait until every accepted order is dispatched (or further), or failed, or the time bound.
      let lastLog = Date.now();
      for (;;) {
        const [row] = await ctx.db
          .select({
            done: sql<number>`count(*) filter (where ${orders.status} in ('dispatched','in_transit','delivered','failed','cancelled'))`,
          })
          .from(orders);
        const done = Number(row.done);
        if (done >= ids.length) break;
        if (Date.now() >= deadline) {
          timedOut = true;
          console.log(`${run}: time bound passed with ${done}/${ids.length} dispatched or closed`);
          break;
        }
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          console.log(
            `${run}: ${done}/${ids.length} dispatched at ${((Date.now() - t0) / 1000).toFixed(0)} s`,
          );
        }
        await sleep(500);
      }
      drained = await measure(ctx.db, ids, t0, postMs, intakeMs, run === 'one-shop' ? shops : undefined);
      console.log(`${run}: drained in ${((drained.drainMs ?? 0) / 1000).toFixed(1)} s, ${drained.lost} lost`);
    }
    sampling = false;
    await sampler;
    loop.disable();
    const jobs = new Map<string, { sum: number; count: number }>();
    for (const v of (await (workerProcess ?? running).metrics.jobDuration.get()).values) {
      const queue = String(v.labels.queue);
      const j = jobs.get(queue) ?? { sum: 0, count: 0 };
      if (v.metricName?.endsWith('_sum')) j.sum = v.value;
      if (v.metricName?.endsWith('_count')) j.count = v.value;
      jobs.set(queue, j);
    }
    const jobMeanMs = Object.fromEntries(
      [...jobs].filter(([, j]) => j.count > 0).map(([q, j]) => [q, (j.sum / j.count) * 1000]),
    );
    const memEnd = await redisMemory(redis).catch(() => memStart);
    return {
      run,
      what:
        run === 'intake'
          ? 'posting only (API process, no workers): the baseline'
          : run === 'backlog'
            ? 'posted with no workers, then one worker process drains the whole burst'
            : run === 'one-shop'
              ? `one shop posts ${BIG_SHOP_SHARE * 100}%, ${SHOPS - 1} shops share the rest`
              : `${SHOPS} shops, each order's shop at random`,
      orders: count,
      requests: answered,
      accepted: ids.length,
      refused,
      requestErrors,
      postMs,
      postOrdersPerSecond: (ids.length * 1000) / postMs,
      timedOut,
      drained,
      eventLoopDelayMs: { mean: loop.mean / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      jobMeanMs,
      engineLog: { ...engineLog },
      redis: {
        usedMemoryStart: memStart.used,
        usedMemoryMax: memMax,
        usedMemoryRise: memMax - memStart.used,
        peakRise: Math.max(peakMax, memEnd.peak) - memStart.peak,
      },
    };
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await carrier?.close().catch(() => undefined);
    await workerProcess?.stop().catch(() => undefined);
    await running?.stop().catch(() => undefined);
    const removed = await deleteKeys(redis, prefix).catch((error) => {
      console.error(`could not clean ${prefix}:* — ${(error as Error).message}`);
      return 0;
    });
    redis.disconnect();
    if (KEEP) console.log(`${run}: kept database ${dbName} (BENCH_SURGE_KEEP)`);
    else
      await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((error) => {
        console.error(`could not drop ${dbName} — ${(error as Error).message}`);
      });
    console.log(
      `${run}: cleaned ${removed} Redis keys under ${prefix}:*${KEEP ? '' : `, dropped ${dbName}`}`,
    );
  }
}

async function measure(
  db: RunningProcess['ctx']['db'],
  ids: string[],
  t0: number,
  postMs: number,
  intakeMs: number | null,
  shops: number[] | undefined,
): Promise<NonNullable<RunResult['drained']>> {
  const rows: { id: string; status: string; priority: Class; externalId: string }[] = [];
  const events: { orderId: string; status: string; at: number }[] = [];
  for (let i = 0; i < ids.length; i += 5000) {
    const chunk = ids.slice(i, i + 5000);
    rows.push(
      ...((await db
        .select({
          id: orders.id,
          status: orders.status,
          priority: orders.priority,
          externalId: orders.externalId,
        })
        .from(orders)
        .where(inArray(orders.id, chunk))) as typeof rows),
    );
    for (const e of await db
      .select({
        orderId: orderEvents.orderId,
        status: orderEvents.status,
        recordedAt: orderEvents.recordedAt,
      })
      .from(orderEvents)
      .where(
        and(
          inArray(orderEvents.orderId, chunk),
          eq(orderEvents.attempt, 1),
          inArray(orderEvents.status, ['received', 'allocated', 'dispatched']),
        ),
      ))
      events.push({ orderId: e.orderId, status: e.status, at: e.recordedAt.getTime() - t0 });
  }
  const at = new Map<string, Record<string, number>>();
  for (const e of events) {
    const t = at.get(e.orderId) ?? {};
    t[e.status] = e.at;
    at.set(e.orderId, t);
  }
  const byStatus: Record<string, number> = {};
  for (const o of rows) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  const onward = new Set(['dispatched', 'in_transit', 'delivered']);
  const missingRows = new Set(ids).size - rows.length;
  const notDispatched = rows.filter((o) => !onward.has(o.status) && o.status !== 'failed').length;
  const failed = byStatus.failed ?? 0;
  const latency = (o: { id: string }, from: string, to: string) => {
    const t = at.get(o.id);
    return t && t[from] !== undefined && t[to] !== undefined ? t[to] - t[from] : undefined;
  };
  const of = (list: typeof rows, from: string, to: string) =>
    list.flatMap((o) => {
      const v = latency(o, from, to);
      return v === undefined ? [] : [v];
    });
  const ofClass = (c: Class) => rows.filter((o) => o.priority === c);
  const receivedToDispatched = {
    all: summary(of(rows, 'received', 'dispatched')),
    essential: summary(of(ofClass('essential'), 'received', 'dispatched')),
    express: summary(of(ofClass('express'), 'received', 'dispatched')),
    standard: summary(of(ofClass('standard'), 'received', 'dispatched')),
  };
  const receivedToAllocated = {
    essential: summary(of(ofClass('essential'), 'received', 'allocated')),
    express: summary(of(ofClass('express'), 'received', 'allocated')),
    standard: summary(of(ofClass('standard'), 'received', 'allocated')),
  };
  const stamps = (status: string) =>
    rows.flatMap((o) => {
      const t = at.get(o.id)?.[status];
      return t === undefined ? [] : [{ cls: o.priority, at: t }];
    });
  const dispatchedAt = stamps('dispatched').map((d) => d.at);
  const drainMs = dispatchedAt.length ? dispatchedAt.reduce((a, b) => Math.max(a, b), 0) : null;
  const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);
  const received = stamps('received');
  let shopsReport: NonNullable<RunResult['drained']>['shops'];
  if (shops) {
    // The shop of each order, from its externalId (SURGE-000001 is the burst's first order).
    const shopOf = (o: { externalId: string }) => shops[Number(o.externalId.slice(6)) - 1];
    const big = rows.filter((o) => shopOf(o) === 0);
    const small = rows.filter((o) => shopOf(o) !== 0);
    const group = (list: typeof rows) => ({
      all: summary(of(list, 'received', 'dispatched')),
      standard: summary(
        of(
          list.filter((o) => o.priority === 'standard'),
          'received',
          'dispatched',
        ),
      ),
    });
    const [b, s] = [group(big), group(small)];
    shopsReport = {
      big: b,
      small: s,
      smallP99VsBig: {
        all: ratio(s.all.p99Ms, b.all.p99Ms),
        standard: ratio(s.standard.p99Ms, b.standard.p99Ms),
      },
    };
  }
  return {
    lost: missingRows + notDispatched,
    missingRows,
    notDispatched,
    failed,
    byStatus,
    drainMs,
    drainVsIntake: ratio(drainMs, intakeMs),
    drainVsPost: ratio(drainMs, postMs),
    receivedToDispatched,
    p99VsDrain: {
      essential: ratio(receivedToDispatched.essential.p99Ms, drainMs),
      express: ratio(receivedToDispatched.express.p99Ms, drainMs),
      standard: ratio(receivedToDispatched.standard.p99Ms, drainMs),
    },
    receivedToAllocated,
    essentialP99WithinBound:
      receivedToDispatched.essential.p99Ms === null
        ? null
        : receivedToDispatched.essential.p99Ms <= ESSENTIAL_P99_BOUND_MS,
    allocationShares: stageShares(received, stamps('allocated')),
    dispatchShares: stageShares(received, stamps('dispatched')),
    shops: shopsReport,
  };
}

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? 'n/a' : `${(v * 100).toFixed(1)}%`;
const ms = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : `${Math.round(v)} ms`);
const sec = (v: number | null | undefined) =>
  v === null || v === undefined ? 'n/a' : `${(v / 1000).toFixed(1)} s`;
const x = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(3)}×`);
const mb = (v: number) => `${(v / 1024 / 1024).toFixed(1)} MiB`;

function printTable(results: RunResult[]) {
  const drainedRuns = results.filter((r) => r.drained);
  const table: string[][] = [['measure', ...drainedRuns.map((r) => r.run)]];
  const row = (label: string, show: (d: NonNullable<RunResult['drained']>, r: RunResult) => string) =>
    table.push([label, ...drainedRuns.map((r) => show(r.drained!, r))]);
  row('orders accepted / posted', (_, r) => `${r.accepted}/${r.orders}${r.timedOut ? ' (timed out)' : ''}`);
  row(
    'orders refused',
    (_, r) =>
      Object.entries(r.refused)
        .map(([s, n]) => `${s}: ${n}`)
        .join(', ') || '0',
  );
  row(
    'orders lost (must be 0)',
    (d) => `${d.lost} (missing ${d.missingRows}, not dispatched ${d.notDispatched})`,
  );
  row('orders failed', (d) => String(d.failed));
  row(
    'posting the burst (workers on)',
    (_, r) => `${sec(r.postMs)} (${Math.round(r.postOrdersPerSecond)}/s)`,
  );
  row('drain: first post → last dispatched', (d) => sec(d.drainMs));
  row('  drain ÷ intake-only post time', (d) => x(d.drainVsIntake));
  row("  drain ÷ this run's post time", (d) => x(d.drainVsPost));
  for (const c of CLASSES) {
    row(`${c} received→dispatched p50`, (d) => ms(d.receivedToDispatched[c].p50Ms));
    row(`${c} p99 (÷ drain)`, (d) => `${ms(d.receivedToDispatched[c].p99Ms)} (${x(d.p99VsDrain[c])})`);
  }
  row('essential p99 ≤ 1 s', (d) =>
    d.essentialP99WithinBound === null ? 'n/a' : d.essentialP99WithinBound ? 'yes' : 'NO',
  );
  for (const [stage, pick] of [
    ['allocation', (d: NonNullable<RunResult['drained']>) => d.allocationShares],
    ['dispatch', (d: NonNullable<RunResult['drained']>) => d.dispatchShares],
  ] as const) {
    row(
      `${stage}: saturated seconds (all wait)`,
      (d) => `${pick(d).saturated.seconds} (${pick(d).saturated.perSecond?.toFixed(0) ?? 'n/a'}/s)`,
    );
    row(`  shares mean ess/exp/std`, (d) => CLASSES.map((c) => pct(pick(d).saturated.mean[c])).join(' / '));
    row(
      `  min share exp / std`,
      (d) => `${pct(pick(d).saturated.min.express)} / ${pct(pick(d).saturated.min.standard)}`,
    );
    row(`  std behind higher: s, mean, min`, (d) => {
      const s = pick(d).standardBehindHigher;
      return `${s.seconds}, ${pct(s.mean.standard)}, ${pct(s.min.standard)}`;
    });
    row(`  exp behind essential: s, mean, min`, (d) => {
      const s = pick(d).expressBehindEssential;
      return `${s.seconds}, ${pct(s.mean.express)}, ${pct(s.min.express)}`;
    });
  }
  row('big shop p50 / p99 (all)', (d) =>
    d.shops ? `${ms(d.shops.big.all.p50Ms)} / ${ms(d.shops.big.all.p99Ms)}` : '-',
  );
  row('small shops p50 / p99 (all)', (d) =>
    d.shops ? `${ms(d.shops.small.all.p50Ms)} / ${ms(d.shops.small.all.p99Ms)}` : '-',
  );
  row('  small p99 ÷ big p99 (all / std)', (d) =>
    d.shops ? `${x(d.shops.smallP99VsBig.all)} / ${x(d.shops.smallP99VsBig.standard)}` : '-',
  );
  row(
    'event loop delay mean / p99 / max',
    (_, r) =>
      [r.eventLoopDelayMs.mean, r.eventLoopDelayMs.p99, r.eventLoopDelayMs.max]
        .map((v) => Math.round(v))
        .join(' / ') + ' ms',
  );
  row(
    'job run time mean alloc / disp / notif',
    (_, r) =>
      ['allocation', 'dispatch', 'notification']
        .map((q) => (r.jobMeanMs[q] === undefined ? 'n/a' : String(Math.round(r.jobMeanMs[q]))))
        .join(' / ') + ' ms',
  );
  row(
    'enqueues past deadline / re-enqueued',
    (_, r) => `${r.engineLog.enqueueDeadlinePassed} / ${r.engineLog.reconcilerRequeued}`,
  );
  row(
    'Redis used_memory rise / peak rise',
    (_, r) => `${mb(r.redis.usedMemoryRise)} / ${mb(r.redis.peakRise)}`,
  );
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const r of table)
    console.log(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
}

async function main() {
  // However the engine behaves, the bench ends: the time bound, the stops and a margin.
  setTimeout(() => {
    console.error('surge bench: overall time bound passed; exiting');
    process.exit(2);
  }, TIMEOUT_MS + 120_000).unref();
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  const results: RunResult[] = [];
  try {
    let intakeMs: number | null = null;
    for (const run of SCENARIOS) {
      if (Date.now() >= deadline) {
        console.log(`${run}: skipped, the time bound passed`);
        continue;
      }
      const result = await runScenario(run, N, admin, intakeMs);
      if (run === 'intake') intakeMs = result.postMs;
      results.push(result);
      if (result.timedOut) break;
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
  const intake = results.find((r) => r.run === 'intake');
  console.log(
    `\nSurgeline surge: ${N} orders (2% essential, 18% express, 80% standard, seed ${SEED}), batches of ${BATCH}, ${IN_FLIGHT} in flight; PostgreSQL ${SERVER_URL.replace(/\/[^/]*$/, '/bench_surge_*')}, Redis ${loadConfig({ ...env, DATABASE_URL: 'memory://' }).redisUrl}`,
  );
  if (intake)
    console.log(
      `intake-only baseline: ${sec(intake.postMs)} to post (${Math.round(intake.postOrdersPerSecond)}/s), no workers; ${intake.engineLog.enqueueDeadlinePassed} enqueues skipped past the request's deadline\n`,
    );
  printTable(results);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/surge.json',
    JSON.stringify(
      {
        orders: N,
        mix: { ...MIX, standard: 1 - MIX.essential - MIX.express },
        seed: SEED,
        at: new Date().toISOString(),
        database: 'postgresql',
        batch: BATCH,
        inFlight: IN_FLIGHT,
        shops: SHOPS,
        bigShopShare: BIG_SHOP_SHARE,
        workerConcurrency: loadConfig({ ...env, DATABASE_URL: 'memory://' }).workerConcurrency,
        baseline: 'intake (post time with no workers)',
        timedOut: results.some((r) => r.timedOut) || results.length < SCENARIOS.length,
        results,
      },
      null,
      2,
    ),
  );
  console.log('\nwritten: bench/results/surge.json');
  const lost = results.some((r) => (r.drained?.lost ?? 0) > 0);
  for (const r of results) {
    if (r.timedOut) console.log(`${r.run}: the time bound passed before it finished`);
    if (r.drained && r.drained.lost > 0) console.log(`${r.run}: ${r.drained.lost} orders lost`);
    if (r.drained?.essentialP99WithinBound === false)
      console.log(`${r.run}: essential p99 received → dispatched over ${ESSENTIAL_P99_BOUND_MS} ms`);
  }
  // Timed out, or an order lost: exit 1 (an essential p99 over its bound is reported, not fatal).
  if (results.some((r) => r.timedOut) || results.length < SCENARIOS.length || lost) process.exitCode = 1;
}

main()
  .then(() => process.exit())
  .catch((error) => {
    console.error(`surge bench failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  });
