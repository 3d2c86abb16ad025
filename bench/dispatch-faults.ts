/**
 * Dispatch under carrier faults (part of `npm run bench`). Two simulated carriers: A (rank 1,
 * answers 503 to a share of booking calls) and B (rank 2, healthy), both with a few ms of latency
 * and fast progress events. N orders are posted and followed until every one is closed; then,
 * from the engine's own records: how parcels got booked (carrier_attempts, as the demo's
 * `logisticsReport` counts them), dispatch latency received → dispatched (order_events
 * recordedAt), and the delivered-by-promise rate. The same N orders with A healthy run first as
 * the baseline: latency is judged as a ratio to it, never in absolute ms (machines here are noisy).
 *
 * Each run (warm-up, baseline, faulty) has a fresh engine (in-memory PGlite unless
 * BENCH_DATABASE_URL), its own carriers, region and SKUs, so nothing carries over between them (no
 * breaker, no success rate, no table growth). Every Redis key lives under one QUEUE_PREFIX made for
 * this invocation and is deleted at the end. Each run is bounded by BENCH_FAULT_TIMEOUT_MS; on
 * timeout the figures cover what finished and the process exits 1.
 *
 * Env: BENCH_FAULT_ORDERS (500), BENCH_FAULT_RATE (0.2), BENCH_FAULT_TIMEOUT_MS (120000),
 * BENCH_FAULT_WARMUP (100 orders, unmeasured; 0 = none), BENCH_DATABASE_URL, REDIS_URL.
 * Writes bench/results/dispatch-faults.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { and, eq, inArray } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { carrierAttempts, orderEvents, orders, shipments } from '../src/db/schema.js';
import { startCarrierSimulator, type CarrierSimulator } from '../src/demo/carrier-simulator.js';
import { logisticsReport, percentile } from '../src/demo/report.js';
import { surgeOrders } from '../src/demo/surge.js';
import { TERMINAL, type OrderStatus } from '../src/domain/status.js';
import { startProcess } from '../src/runtime.js';

const env = process.env;
const N = Number(env.BENCH_FAULT_ORDERS ?? 500);
const FAULT_RATE = Number(env.BENCH_FAULT_RATE ?? 0.2);
const TIMEOUT_MS = Number(env.BENCH_FAULT_TIMEOUT_MS ?? 120_000);
const WARMUP = Number(env.BENCH_FAULT_WARMUP ?? 100);
const DATABASE_URL = env.BENCH_DATABASE_URL || 'memory://';
const ADMIN = 'bench-admin-token';
const POST_CONCURRENCY = 20;
const LATENCY_MS = { min: 5, max: 20 };
const PROGRESS = { inTransitAfterMs: 20, deliveredAfterMs: 50 };
const RUN_ID = randomBytes(4).toString('hex');
const PREFIX = `surgeline-bench-faults-${RUN_ID}`;

interface RunResult {
  run: string;
  faultRateAtA: number;
  orders: number;
  posted: number;
  /** Orders in a terminal status (delivered, failed, cancelled). */
  closed: number;
  timedOut: boolean;
  /** Posting every order (20 at a time); the workers drain meanwhile. */
  postMs: number;
  /** From the first order posted until the last one closed (or the timeout). */
  wallMs: number;
  byStatus: Record<string, number>;
  parcels: number;
  booked: { firstCall: number; afterRetry: number; afterFailover: number };
  shares: { firstCall: number; afterRetry: number; afterFailover: number; failed: number };
  failed: number;
  dispatch: { count: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
  /** allocated → dispatched: the dispatch stage alone, without the wait for allocation. */
  dispatchStage: { p50Ms: number | null; p99Ms: number | null };
  /** received → dispatched per priority: a surge is served essential first, standard last. */
  dispatchByPriority: Record<string, { count: number; p50Ms: number | null; p99Ms: number | null }>;
  deliveredByPromise: { delivered: number; onTime: number; rate: number | null };
  carrierCalls: { A: { calls: number; transient: number }; B: { calls: number; transient: number } };
  /** Parcels booked at each carrier (a parcel never tried at A while its breaker was open counts at B). */
  bookedAt: { A: number; B: number };
  /** Parcels whose first call went to B: A's breaker was open when they were routed. */
  skippedA: number;
  /** A's breaker state, polled every 50 ms from the first order posted: each change and when (ms). */
  breakerAtA: { state: string; atMs: number }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runOnce(run: string, faultRate: number, count: number): Promise<RunResult> {
  const tag = `${RUN_ID}-${run}`;
  const config = loadConfig({
    ...env,
    DATABASE_URL,
    QUEUE_PREFIX: PREFIX,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
  });
  const running = await startProcess('all', config);
  const carriers: CarrierSimulator[] = [];
  let polling = true;
  try {
    await running.ready;
    const { app, ctx } = running;
    const api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const admin = { authorization: `Bearer ${ADMIN}` };
    const adminCall = async (method: 'POST' | 'PUT' | 'PATCH', url: string, payload: object) => {
      const response = await app.inject({ method, url, headers: admin, payload });
      if (response.statusCode >= 300)
        throw new Error(`${method} ${url} → ${response.statusCode}: ${response.body}`);
      return response.json() as Record<string, unknown>;
    };

    // Its own region and SKUs per run: on a shared server database, carriers, warehouses and stock
    // left by earlier runs serve none of these orders.
    const region = `bench-${tag}`;
    const skus = ['A', 'B', 'C'].map((s) => `${tag}-${s}`);
    const ids = { A: `${tag}-a`, B: `${tag}-b` };
    const simA = await startCarrierSimulator({
      carrierId: ids.A,
      webhookSecret: 'bench-secret-a',
      eventsBaseUrl: api,
      failureRate: faultRate,
      latencyMs: LATENCY_MS,
      progress: PROGRESS,
    });
    carriers.push(simA);
    const simB = await startCarrierSimulator({
      carrierId: ids.B,
      webhookSecret: 'bench-secret-b',
      eventsBaseUrl: api,
      latencyMs: LATENCY_MS,
      progress: PROGRESS,
    });
    carriers.push(simB);
    for (const [id, sim, rank] of [
      [ids.A, simA, 1],
      [ids.B, simB, 2],
    ] as const) {
      await adminCall('POST', '/v1/admin/carriers', {
        id,
        name: `Bench ${id}`,
        kind: 'http',
        baseUrl: sim.url,
        webhookSecret: id === ids.A ? 'bench-secret-a' : 'bench-secret-b',
        regions: [region],
        rank,
      });
    }
    const shop = (await adminCall('POST', '/v1/admin/shops', {
      name: `Bench ${tag}`,
      rateLimitPerMinute: 1_000_000,
    })) as { apiKey: string };
    await adminCall('POST', '/v1/admin/warehouses', { id: `wh-${tag}`, name: `Bench ${tag}`, region });
    for (const sku of skus) {
      await adminCall('PUT', '/v1/admin/inventory', { warehouseId: `wh-${tag}`, sku, quantity: 1_000_000 });
    }
    // Carrier workers start on the engine's next carriers refresh: wait for both, so the first
    // orders do not count that wait as dispatch latency.
    const workersBy = Date.now() + 15_000;
    for (const id of [ids.A, ids.B]) {
      while ((await ctx.queues.carrierQueue(id).getWorkersCount()) === 0) {
        if (Date.now() > workersBy) throw new Error(`no worker for carrier ${id} after 15 s`);
        await sleep(50);
      }
    }

    const bodies = surgeOrders(count, skus, [region]);
    const orderIds: string[] = [];
    const started = Date.now();
    const breakerLog: RunResult['breakerAtA'] = [];
    const poller = (async () => {
      while (polling) {
        const views = await ctx.breakers.states([ids.A]).catch(() => undefined);
        const state = views?.[ids.A]?.state;
        if (state && state !== breakerLog.at(-1)?.state)
          breakerLog.push({ state, atMs: Date.now() - started });
        await sleep(50);
      }
    })();
    const deadline = started + TIMEOUT_MS;
    for (let i = 0; i < bodies.length && Date.now() < deadline; i += POST_CONCURRENCY) {
      await Promise.all(
        bodies.slice(i, i + POST_CONCURRENCY).map(async (body, j) => {
          const response = await app.inject({
            method: 'POST',
            url: '/v1/orders',
            headers: { authorization: `Bearer ${shop.apiKey}`, 'idempotency-key': `${tag}-${i + j}` },
            payload: body,
          });
          if (response.statusCode !== 202)
            throw new Error(`intake answered ${response.statusCode}: ${response.body}`);
          orderIds.push((response.json() as { id: string }).id);
        }),
      );
    }

    const postMs = Date.now() - started;
    let closed = 0;
    let timedOut = orderIds.length < count;
    for (;;) {
      const rows = await ctx.db
        .select({ status: orders.status })
        .from(orders)
        .where(inArray(orders.id, orderIds));
      closed = rows.filter((o) => TERMINAL.has(o.status as OrderStatus)).length;
      if (closed >= orderIds.length && orderIds.length === count) break;
      if (Date.now() >= deadline) {
        timedOut = true;
        break;
      }
      await sleep(100);
    }
    const wallMs = Date.now() - started;
    polling = false;
    await poller;

    const rows = await ctx.db.select().from(orders).where(inArray(orders.id, orderIds));
    const events = await ctx.db
      .select({
        orderId: orderEvents.orderId,
        status: orderEvents.status,
        recordedAt: orderEvents.recordedAt,
      })
      .from(orderEvents)
      .where(and(inArray(orderEvents.orderId, orderIds), eq(orderEvents.attempt, 1)));
    const attempts = await ctx.db
      .select({
        shipmentId: carrierAttempts.shipmentId,
        carrierId: carrierAttempts.carrierId,
        outcome: carrierAttempts.outcome,
        id: carrierAttempts.id,
      })
      .from(carrierAttempts)
      .where(inArray(carrierAttempts.orderId, orderIds));
    const parcels = await ctx.db
      .select({ id: shipments.id })
      .from(shipments)
      .where(inArray(shipments.orderId, orderIds));

    const byStatus: Record<string, number> = {};
    for (const o of rows) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
    const failed = byStatus.failed ?? 0;
    const logistics = logisticsReport(attempts, events);
    const firstCarrier = new Map<string, string>();
    for (const a of [...attempts].sort((x, y) => x.id - y.id))
      if (!firstCarrier.has(a.shipmentId)) firstCarrier.set(a.shipmentId, a.carrierId);
    const at = new Map<string, Map<string, number>>();
    for (const e of events) {
      const perOrder = at.get(e.orderId) ?? new Map<string, number>();
      perOrder.set(e.status, e.recordedAt.getTime());
      at.set(e.orderId, perOrder);
    }
    const between = (from: string, to: string, only?: Set<string>) =>
      [...at].flatMap(([id, t]) =>
        (!only || only.has(id)) && t.has(from) && t.has(to) ? [t.get(to)! - t.get(from)!] : [],
      );
    const latencies = between('received', 'dispatched');
    const stage = between('allocated', 'dispatched');
    const dispatchByPriority: RunResult['dispatchByPriority'] = {};
    for (const priority of ['essential', 'express', 'standard']) {
      const ofPriority = between(
        'received',
        'dispatched',
        new Set(rows.filter((o) => o.priority === priority).map((o) => o.id)),
      );
      dispatchByPriority[priority] = {
        count: ofPriority.length,
        p50Ms: percentile(ofPriority, 50),
        p99Ms: percentile(ofPriority, 99),
      };
    }
    const delivered = rows.filter((o) => o.status === 'delivered');
    const onTime = delivered.filter((o) => o.deliveredAt && o.deliveredAt <= o.initialPromisedBy).length;
    const share = (n: number) => (orderIds.length ? n / orderIds.length : 0);

    if (timedOut) {
      console.log(
        `${run}: timed out after ${(wallMs / 1000).toFixed(1)} s: posted ${orderIds.length}/${count}, closed ${closed} (${Object.entries(
          byStatus,
        )
          .map(([s, n]) => `${s} ${n}`)
          .join(', ')})`,
      );
    }
    return {
      run,
      faultRateAtA: faultRate,
      orders: count,
      posted: orderIds.length,
      closed: rows.filter((o) => TERMINAL.has(o.status as OrderStatus)).length,
      timedOut,
      postMs,
      wallMs,
      byStatus,
      parcels: parcels.length,
      booked: {
        firstCall: logistics.firstCall,
        afterRetry: logistics.afterRetry,
        afterFailover: logistics.afterFailover,
      },
      shares: {
        firstCall: share(logistics.firstCall),
        afterRetry: share(logistics.afterRetry),
        afterFailover: share(logistics.afterFailover),
        failed: share(failed),
      },
      failed,
      dispatch: {
        count: latencies.length,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: latencies.length ? Math.max(...latencies) : null,
      },
      dispatchStage: { p50Ms: percentile(stage, 50), p99Ms: percentile(stage, 99) },
      dispatchByPriority,
      deliveredByPromise: {
        delivered: delivered.length,
        onTime,
        rate: delivered.length ? onTime / delivered.length : null,
      },
      carrierCalls: {
        A: { calls: simA.stats.calls, transient: simA.stats.transient },
        B: { calls: simB.stats.calls, transient: simB.stats.transient },
      },
      bookedAt: {
        A: attempts.filter((a) => a.outcome === 'booked' && a.carrierId === ids.A).length,
        B: attempts.filter((a) => a.outcome === 'booked' && a.carrierId === ids.B).length,
      },
      skippedA: [...firstCarrier.values()].filter((c) => c === ids.B).length,
      breakerAtA: breakerLog,
    };
  } finally {
    polling = false;
    for (const c of carriers) await c.close().catch(() => undefined);
    await running.stop();
  }
}

/** Deletes every key under this invocation's prefix (queues, breakers, rate logs, reconciler). */
async function cleanKeys(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let removed = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) removed += await redis.del(...keys);
    } while (cursor !== '0');
    return removed;
  } finally {
    redis.disconnect();
  }
}

const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
const msOf = (v: number | null) => (v === null ? 'n/a' : `${Math.round(v)} ms`);
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);

async function main() {
  // However the engine behaves, the bench ends: every run's timeout, stops and a margin.
  setTimeout(
    () => {
      console.error('dispatch-faults bench: overall time bound passed; exiting');
      process.exit(2);
    },
    3 * (TIMEOUT_MS + 30_000) + 60_000,
  ).unref();
  const redisUrl = loadConfig({ ...env, DATABASE_URL: 'memory://' }).redisUrl;
  let results: { warmup?: RunResult; baseline: RunResult; faulty: RunResult };
  try {
    // The warm-up (unmeasured) runs first so neither measured run pays for the JIT and the
    // connection set-up alone; the baseline is then measured just before the faulty run.
    const warmup = WARMUP > 0 ? await runOnce('warmup', 0, WARMUP) : undefined;
    const baseline = await runOnce('baseline', 0, N);
    const faulty = await runOnce('faulty', FAULT_RATE, N);
    results = { warmup, baseline, faulty };
  } finally {
    const removed = await cleanKeys(redisUrl).catch((error) => {
      console.error(`could not clean ${PREFIX}:* — ${(error as Error).message}`);
      return 0;
    });
    console.log(`cleaned ${removed} Redis keys under ${PREFIX}:*`);
  }
  const { baseline: b, faulty: f } = results;
  const ratios = {
    p50: ratio(f.dispatch.p50Ms, b.dispatch.p50Ms),
    p99: ratio(f.dispatch.p99Ms, b.dispatch.p99Ms),
  };

  const db = DATABASE_URL === 'memory://' ? 'in-memory PGlite' : 'PostgreSQL (BENCH_DATABASE_URL)';
  console.log(
    `\nSurgeline dispatch under faults: ${N} orders per run, A rank 1 (503 on ${pct(FAULT_RATE)} of calls in the faulty run), B rank 2 healthy; ${db}, Redis ${redisUrl}\n`,
  );
  const times = (x: number | null, y: number | null) => ratio(x, y)?.toFixed(2) ?? 'n/a';
  const row = <T>(label: string, pick: (r: RunResult) => T, show: (v: T) => string) => [
    label,
    show(pick(b)),
    show(pick(f)),
    '',
  ];
  const table: string[][] = [
    ['measure', `baseline (A 0%)`, `faulty (A ${pct(FAULT_RATE)})`, 'faulty/baseline'],
    row('orders closed', (r) => `${r.closed}/${r.orders}${r.timedOut ? ' (timed out)' : ''}`, String),
    row('booked: first call, first carrier', (r) => r.shares.firstCall, pct),
    row('booked: first carrier after retry', (r) => r.shares.afterRetry, pct),
    row('booked: after failover', (r) => r.shares.afterFailover, pct),
    row('orders failed', (r) => `${r.failed} (${pct(r.shares.failed)})`, String),
    [
      'dispatch p50 (received→dispatched)',
      msOf(b.dispatch.p50Ms),
      msOf(f.dispatch.p50Ms),
      times(f.dispatch.p50Ms, b.dispatch.p50Ms),
    ],
    [
      'dispatch p99',
      msOf(b.dispatch.p99Ms),
      msOf(f.dispatch.p99Ms),
      times(f.dispatch.p99Ms, b.dispatch.p99Ms),
    ],
    [
      'dispatch max',
      msOf(b.dispatch.maxMs),
      msOf(f.dispatch.maxMs),
      times(f.dispatch.maxMs, b.dispatch.maxMs),
    ],
    [
      '  allocated→dispatched p50',
      msOf(b.dispatchStage.p50Ms),
      msOf(f.dispatchStage.p50Ms),
      times(f.dispatchStage.p50Ms, b.dispatchStage.p50Ms),
    ],
    [
      '  allocated→dispatched p99',
      msOf(b.dispatchStage.p99Ms),
      msOf(f.dispatchStage.p99Ms),
      times(f.dispatchStage.p99Ms, b.dispatchStage.p99Ms),
    ],
    ...['essential', 'express', 'standard'].flatMap((p) =>
      (['p50Ms', 'p99Ms'] as const).map((q) => {
        const [x, y] = [b.dispatchByPriority[p][q], f.dispatchByPriority[p][q]];
        return [`  ${p} ${q.slice(0, 3)}`, msOf(x), msOf(y), times(y, x)];
      }),
    ),
    row('delivered by promise', (r) => r.deliveredByPromise.rate, pct),
    row(
      'carrier calls A (503s) / B',
      (r) => `${r.carrierCalls.A.calls} (${r.carrierCalls.A.transient}) / ${r.carrierCalls.B.calls}`,
      String,
    ),
    row('parcels booked at A / at B', (r) => `${r.bookedAt.A} / ${r.bookedAt.B}`, String),
    row('  first call at B (A breaker open)', (r) => r.skippedA, String),
    row(
      'breaker at A: opened',
      (r) => {
        const opens = r.breakerAtA.filter((c) => c.state === 'open');
        return opens.length ? `${opens.length}× (first ${(opens[0].atMs / 1000).toFixed(1)} s)` : 'never';
      },
      String,
    ),
    ['posting all orders', msOf(b.postMs), msOf(f.postMs), times(f.postMs, b.postMs)],
    ['wall time, post → all closed', msOf(b.wallMs), msOf(f.wallMs), times(f.wallMs, b.wallMs)],
  ];
  for (const [m, x, y, r] of table)
    console.log(`${m.padEnd(36)} ${x.padStart(16)} ${y.padStart(18)} ${r.padStart(16)}`);

  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/dispatch-faults.json',
    JSON.stringify(
      {
        orders: N,
        faultRate: FAULT_RATE,
        at: new Date().toISOString(),
        database: DATABASE_URL === 'memory://' ? 'pglite-memory' : 'postgres',
        carrierLatencyMs: LATENCY_MS,
        progress: PROGRESS,
        warmupOrders: WARMUP,
        ratios,
        baseline: b,
        faulty: f,
      },
      null,
      2,
    ),
  );
  console.log('\nwritten: bench/results/dispatch-faults.json');
  if (b.timedOut || f.timedOut) process.exitCode = 1;
}

main()
  .then(() => process.exit())
  .catch((error) => {
    console.error(`dispatch-faults bench failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  });
