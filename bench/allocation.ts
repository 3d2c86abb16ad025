/**
 * Allocation throughput on PostgreSQL: the real allocation step (src/steps/allocate.ts), called
 * in-process with BENCH_ALLOC_CONCURRENCY (8) at once, on orders already committed, for three
 * scenarios in one run:
 *   - hot:    every order wants 1 unit of one SKU (three warehouses hold plenty): every reservation
 *             meets the others on the same few stock rows;
 *   - spread: orders spread over 1,000 SKUs, 1 unit each (the baseline: little contention);
 *   - split:  4 units of one of 1,000 SKUs, each held 3 + 3 + 3 by three warehouses, so no
 *             warehouse can fill an order alone and each ships from ≥ 2 (ALLOW_SPLIT=1 and the
 *             nearest-first strategy; an engine without them fails these out_of_stock, which the
 *             outcome column shows).
 * Each scenario: seed its stock and N orders (bulk inserts, not timed), then time the allocation
 * stage alone, first call to last answer; per-order latency is each allocate() call. The figures
 * are also given as ratios to `spread`, measured in the same run (machines here are noisy). An
 * unmeasured warm-up runs first. Dispatch and notification jobs the step enqueues go to Redis under
 * this run's own QUEUE_PREFIX, and no worker takes them; every key under it is deleted at the end.
 *
 * A fresh database `bench_alloc_<pid>` is created on BENCH_ALLOC_SERVER_URL
 * (postgres://postgres@127.0.0.1:5432/postgres) and dropped at the end.
 * Env: BENCH_ALLOC_ORDERS (2000), BENCH_ALLOC_CONCURRENCY (8), BENCH_ALLOC_WARMUP (200), REDIS_URL.
 * Prints a table and writes bench/results/allocation.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { inArray, sql } from 'drizzle-orm';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { openDatabase, type Db } from '../src/db/client.js';
import { allocations, inventory, orderItems, orders, shops, warehouses } from '../src/db/schema.js';
import { createContext } from '../src/runtime.js';
import { allocate } from '../src/steps/allocate.js';
import { deleteKeys } from './lib/common.js';

const env = process.env;
const N = Number(env.BENCH_ALLOC_ORDERS ?? 2000);
const CONCURRENCY = Number(env.BENCH_ALLOC_CONCURRENCY ?? 8);
const WARMUP = Number(env.BENCH_ALLOC_WARMUP ?? 200);
const SERVER_URL = env.BENCH_ALLOC_SERVER_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const DB_NAME = `bench_alloc_${process.pid}`;
const PREFIX = `surgeline-bench-alloc-${randomBytes(4).toString('hex')}`;
const SKUS = 1_000;
const WAREHOUSES = [
  { id: 'wh-north', region: 'bench-north' },
  { id: 'wh-south', region: 'bench-south' },
  { id: 'wh-east', region: 'bench-east' },
];

interface Scenario {
  name: string;
  what: string;
  /** Stock rows (per warehouse) and the orders' lines, for scenario tag `tag`. */
  stock(tag: string): { warehouseId: string; sku: string; onHand: number }[];
  line(tag: string, i: number): { sku: string; quantity: number };
}

const everyWarehouse = (sku: string, onHand: number) =>
  WAREHOUSES.map((w) => ({ warehouseId: w.id, sku, onHand }));
const skuOf = (tag: string, i: number) => `${tag}-${String(i % SKUS).padStart(4, '0')}`;

const SCENARIOS: Scenario[] = [
  {
    name: 'spread',
    what: `1 unit of one of ${SKUS} SKUs (baseline)`,
    stock: (tag) => Array.from({ length: SKUS }, (_, k) => everyWarehouse(skuOf(tag, k), 1_000)).flat(),
    line: (tag, i) => ({ sku: skuOf(tag, i), quantity: 1 }),
  },
  {
    name: 'hot',
    what: '1 unit of one hot SKU',
    stock: (tag) => everyWarehouse(`${tag}-HOT`, 1_000_000),
    line: (tag) => ({ sku: `${tag}-HOT`, quantity: 1 }),
  },
  {
    name: 'split',
    what: `4 units of one of ${SKUS} SKUs held 3+3+3`,
    stock: (tag) => Array.from({ length: SKUS }, (_, k) => everyWarehouse(skuOf(tag, k), 3)).flat(),
    line: (tag, i) => ({ sku: skuOf(tag, i), quantity: 4 }),
  },
];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function seed(
  db: Db,
  shopId: string,
  scenario: Scenario,
  tag: string,
  count: number,
): Promise<string[]> {
  const stock = scenario.stock(tag);
  for (let i = 0; i < stock.length; i += 1000) await db.insert(inventory).values(stock.slice(i, i + 1000));
  const ids: string[] = [];
  for (let start = 0; start < count; start += 500) {
    const now = new Date();
    const rows = [];
    const items = [];
    for (let i = start; i < Math.min(count, start + 500); i++) {
      const id = randomUUID();
      ids.push(id);
      const region = WAREHOUSES[i % WAREHOUSES.length].region;
      rows.push({
        id,
        shopId,
        idempotencyKey: `${tag}-${i}`,
        requestHash: 'bench',
        externalId: `${tag}-${i}`,
        status: 'received' as const,
        priority: 'standard' as const,
        customer: { name: `Customer ${i}`, email: `c${i}@example.com` },
        shippingAddress: {
          region,
          line1: `${i} Bench Road`,
          city: 'Shanghai',
          postalCode: '200000',
          country: 'CN',
        },
        region,
        locale: 'en',
        notifyChannels: ['email'],
        trackingToken: randomBytes(18).toString('base64url'),
        promisedBy: new Date(now.getTime() + 48 * 3600_000),
        initialPromisedBy: new Date(now.getTime() + 48 * 3600_000),
        createdAt: now,
        updatedAt: now,
      });
      items.push({ orderId: id, line: 0, ...scenario.line(tag, i) });
    }
    await db.insert(orders).values(rows as never);
    await db.insert(orderItems).values(items);
  }
  return ids;
}

interface Measured {
  scenario: string;
  what: string;
  orders: number;
  wallMs: number;
  ordersPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  outcomes: Record<string, number>;
  errors: number;
  /** Orders reserved from 1, 2, 3 … warehouses. */
  parcelsPerOrder: Record<string, number>;
  /** vs the `spread` baseline: throughput ratio (higher is faster), latency ratios (higher is slower). */
  vsBaseline?: { ordersPerSecond: number; p50: number; p99: number };
}

async function main() {
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${DB_NAME}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${DB_NAME}`;
  const database = openDatabase(url.toString(), '');
  const config = loadConfig({
    ...env,
    DATABASE_URL: url.toString(),
    QUEUE_PREFIX: PREFIX,
    ADMIN_TOKEN: 'bench-admin-token',
    LOG_LEVEL: env.LOG_LEVEL ?? 'silent',
    ALLOW_SPLIT: '1',
    ALLOCATION_STRATEGY: env.ALLOCATION_STRATEGY ?? 'nearest-first',
    WORKER_CONCURRENCY: String(CONCURRENCY),
  });
  const ctx = createContext(config, { database });
  const results: Measured[] = [];
  try {
    await database.migrate();
    while (!ctx.coord.connected()) await new Promise((resolve) => setTimeout(resolve, 20));
    const shopId = randomUUID();
    await ctx.db.insert(shops).values({
      id: shopId,
      name: 'Bench',
      apiKeyId: `bench-${randomBytes(4).toString('hex')}`,
      apiKeyHash: 'x',
      webhookSecret: 'bench-secret',
      rateLimitPerMinute: 1_000_000,
    });
    await ctx.db.insert(warehouses).values(WAREHOUSES.map((w) => ({ ...w, name: w.id })));

    const run = async (scenario: Scenario, tag: string, count: number): Promise<Measured> => {
      const ids = await seed(ctx.db, shopId, scenario, tag, count);
      await ctx.db.execute(sql`analyze`);
      const latencies: number[] = [];
      const outcomes: Record<string, number> = {};
      let errors = 0;
      let next = 0;
      const start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < ids.length) {
            const orderId = ids[next++];
            const t = process.hrtime.bigint();
            try {
              const outcome = await allocate(ctx, { orderId, attempt: 1 });
              outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
            } catch (error) {
              errors++;
              const key = `error: ${(error as Error).message.replace(/order [0-9a-f-]{36}/, 'order …').slice(0, 60)}`;
              outcomes[key] = (outcomes[key] ?? 0) + 1;
            }
            latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
          }
        }),
      );
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      latencies.sort((a, b) => a - b);
      const held = await ctx.db
        .select({ orderId: allocations.orderId, warehouseId: allocations.warehouseId })
        .from(allocations)
        .where(inArray(allocations.orderId, ids));
      const from = new Map<string, Set<string>>();
      for (const a of held) from.set(a.orderId, (from.get(a.orderId) ?? new Set()).add(a.warehouseId));
      const parcelsPerOrder: Record<string, number> = {};
      for (const s of from.values()) parcelsPerOrder[s.size] = (parcelsPerOrder[s.size] ?? 0) + 1;
      return {
        scenario: scenario.name,
        what: scenario.what,
        orders: count,
        wallMs,
        ordersPerSecond: (count * 1000) / wallMs,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        outcomes,
        errors,
        parcelsPerOrder,
      };
    };

    if (WARMUP > 0) await run(SCENARIOS[0], 'WARM', WARMUP);
    for (const scenario of SCENARIOS) results.push(await run(scenario, scenario.name.toUpperCase(), N));
    const base = results.find((r) => r.scenario === 'spread')!;
    for (const r of results)
      r.vsBaseline = {
        ordersPerSecond: r.ordersPerSecond / base.ordersPerSecond,
        p50: r.p50Ms / base.p50Ms,
        p99: r.p99Ms / base.p99Ms,
      };

    console.log(
      `\nSurgeline allocation: ${N} orders per scenario, allocate() ${CONCURRENCY} at a time, PostgreSQL (${DB_NAME}), strategy ${config.allocation.strategy}, ALLOW_SPLIT=1\n`,
    );
    console.log(
      'scenario  orders/s  × base   p50 ms  × base   p99 ms  × base  outcomes                       parcels/order',
    );
    for (const r of results) {
      const v = r.vsBaseline!;
      const outcomes = Object.entries(r.outcomes)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      const parcels = Object.entries(r.parcelsPerOrder)
        .map(([k, n]) => `${k}:${n}`)
        .join(' ');
      console.log(
        `${r.scenario.padEnd(8)} ${r.ordersPerSecond.toFixed(0).padStart(9)} ${v.ordersPerSecond.toFixed(2).padStart(6)} ` +
          `${r.p50Ms.toFixed(1).padStart(8)} ${v.p50.toFixed(2).padStart(6)} ${r.p99Ms.toFixed(1).padStart(8)} ${v.p99.toFixed(2).padStart(6)}  ` +
          `${outcomes.padEnd(30)} ${parcels || '-'}`,
      );
    }
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/allocation.json',
      JSON.stringify(
        {
          at: new Date().toISOString(),
          database: 'postgresql',
          ordersPerScenario: N,
          concurrency: CONCURRENCY,
          warmupOrders: WARMUP,
          strategy: config.allocation.strategy,
          allowSplit: true,
          baseline: 'spread',
          results,
        },
        null,
        2,
      ),
    );
    console.log('\nwritten: bench/results/allocation.json');
  } finally {
    await Promise.all(
      Object.values(ctx.queues.byName).map((q) => q.obliterate({ force: true }).catch(() => undefined)),
    );
    await deleteKeys(ctx.queues.backend.redis!, PREFIX).catch(() => undefined);
    await ctx.queues.close().catch(() => undefined);
    await ctx.coord.close();
    await database.close().catch(() => undefined);
    await admin.unsafe(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});
