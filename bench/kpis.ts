/**
 * The operators' scorecard on a large history: a PostgreSQL database of its own (created, then
 * dropped) holding BENCH_KPI_ORDERS (1,000,000) orders closed over the last 7 days, written with
 * INSERT … SELECT generate_series, with their closure rows (order_closures, what the scorecard
 * reads) generated straight from the orders rather than through events and parcels; VACUUM
 * ANALYZE; then the scorecard's one statement (db/kpis.ts windowCounts, every breakdown) timed for
 * 1h, 24h and 7d — BENCH_KPI_RUNS (5) runs each after a warm-up, median reported — and EXPLAIN of
 * the closed-orders query, whose plan should read order_closures_closed_idx. Prints a table and writes bench/results/kpis.json.
 * BENCH_POSTGRES_URL picks the server (default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { openDatabase } from '../src/db/client.js';
import { closedOrders, windowCounts } from '../src/db/kpis.js';
import { KPI_WINDOWS, scorecard, windowBounds, type KpiWindow } from '../src/domain/kpis.js';

const SERVER = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N = Number(process.env.BENCH_KPI_ORDERS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_KPI_RUNS ?? 5);

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * The history: per order a closing time spread uniformly over 7 days (93% delivered, 5% failed —
 * returned, carrier_failed, out_of_stock —, 2% cancelled), taken in 1–5 h before it closed against
 * a 4 h promise, and feedback from 30% of the delivered. The scorecard reads closure rows
 * (order_closures), so they are generated directly from the orders, as transition() would have
 * written them: closed at the close, dispatched 5–25% of the way from intake to close (delivered and
 * returned), one parcel at one of 4 carriers (none booked for carrier_failed) from one of 10
 * warehouses (no parcel for out_of_stock); cancelled orders have none. Inserted in the order they
 * closed, as transition() appends them (a window's rows lie together on disk). No events, parcels or
 * reservations are written: the scorecard no longer reads them, and generating them took most of
 * the 11 minutes the full history took.
 */
const GENERATE = (n: number, shopId: string) => [
  `SELECT setseed(0.42)`,
  `INSERT INTO shops (id, name, api_key_id, api_key_hash, webhook_secret)
     VALUES ('${shopId}', 'bench', 'bench-key', 'x', 'bench-secret')`,
  `INSERT INTO orders (id, shop_id, idempotency_key, request_hash, external_id, status, priority, attempt,
                       customer, shipping_address, region, locale, notify_channels, tracking_token,
                       promised_by, initial_promised_by, delivered_at, failure_reason, created_at, updated_at)
   SELECT gen_random_uuid(), '${shopId}', 'k' || i, 'h', 'E' || i,
          CASE WHEN r < 0.93 THEN 'delivered' WHEN r < 0.98 THEN 'failed' ELSE 'cancelled' END,
          (ARRAY['essential', 'express', 'standard'])[1 + i % 3], 1,
          '{"name":"b"}', jsonb_build_object('region', 'region-' || i % 20, 'line1', '1', 'city', 'c',
                                             'postalCode', '1', 'country', 'CN'),
          'region-' || i % 20, 'en', '[]', md5(i::text) || i,
          created + interval '4 hours', created + interval '4 hours',
          CASE WHEN r < 0.93 THEN closed END,
          CASE WHEN r < 0.93 OR r >= 0.98 THEN NULL WHEN r < 0.95 THEN 'returned'
               WHEN r < 0.97 THEN 'carrier_failed' ELSE 'out_of_stock' END,
          created, closed
     FROM (SELECT i, r, closed, closed - interval '1 hour' * (1 + 4 * lat) AS created
             FROM (SELECT i, random() AS r, random() AS lat,
                          now() - interval '7 days' * random() AS closed
                     FROM generate_series(1, ${n}) AS i) AS raw) AS g`,
  `INSERT INTO order_closures (order_id, attempt, status, failure_reason, closed_at, on_time, priority, region,
                               processing_ms, carriers, warehouses)
   SELECT id, 1, status, failure_reason, updated_at,
          status = 'delivered' AND delivered_at <= initial_promised_by,
          priority, region,
          CASE WHEN status = 'delivered' OR failure_reason = 'returned'
               THEN extract(epoch FROM (updated_at - created_at) * (0.05 + 0.2 * random())) * 1000 END,
          CASE WHEN failure_reason IN ('carrier_failed', 'out_of_stock') THEN '{}'::text[]
               ELSE ARRAY['carrier-' || abs(hashtext(id::text)) % 4] END,
          CASE WHEN failure_reason = 'out_of_stock' THEN '{}'::text[]
               ELSE ARRAY['wh-' || abs(hashtext(id::text)) % 10] END
     FROM orders WHERE status IN ('delivered', 'failed')
    ORDER BY updated_at`,
  `INSERT INTO feedback (order_id, score)
   SELECT id, 1 + floor(random() * 5)::int FROM orders WHERE status = 'delivered' AND random() < 0.3`,
];

async function main() {
  // BENCH_KPI_DATABASE: time the scorecard on a database an earlier run kept (BENCH_KPI_KEEP=1).
  const reuse = process.env.BENCH_KPI_DATABASE;
  const keep = Boolean(process.env.BENCH_KPI_KEEP || reuse);
  const name = reuse ?? `surgeline_bench_kpis_${randomBytes(4).toString('hex')}`;
  const admin = postgres(SERVER, { max: 1, onnotice: () => {} });
  if (!reuse) await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER);
  url.pathname = `/${name}`;
  const database = openDatabase(url.toString(), '');
  try {
    await database.migrate();
    const { db } = database;
    let start = process.hrtime.bigint();
    if (!reuse) {
      for (const statement of GENERATE(N, '00000000-0000-4000-8000-000000000001'))
        await db.execute(sql.raw(statement));
      await db.execute(sql.raw('VACUUM ANALYZE'));
    }
    const generateMs = reuse ? null : ms(start);
    const orderCount = Number(
      ((await db.execute(sql`SELECT count(*)::int AS n FROM orders`)) as unknown as { n: number }[])[0].n,
    );
    console.log(
      generateMs === null
        ? `reusing ${name}: ${orderCount} orders`
        : `generated ${orderCount} orders in ${(generateMs / 1000).toFixed(1)} s (with VACUUM ANALYZE)`,
    );

    const results: Record<string, unknown>[] = [];
    for (const window of KPI_WINDOWS) {
      const bounds = () => windowBounds(window as KpiWindow, new Date());
      await windowCounts(db, bounds()); // warm-up
      const times: number[] = [];
      let last;
      for (let i = 0; i < RUNS; i++) {
        start = process.hrtime.bigint();
        last = await windowCounts(db, bounds());
        times.push(ms(start));
      }
      const card = scorecard({ window, ...last!, queueDepths: {} });
      const plan = (await db.execute(sql`EXPLAIN ${closedOrders(bounds())}`)) as unknown as {
        'QUERY PLAN': string;
      }[];
      const lines = plan.map((row) => row['QUERY PLAN']);
      const indexLine = lines.find((l) => l.includes('order_closures_closed_idx'))?.trim() ?? null;
      results.push({
        window,
        closedOrders: last!.total.closed,
        medianMs: Math.round(median(times) * 10) / 10,
        runsMs: times.map((t) => Math.round(t * 10) / 10),
        onTimeRate: card.onTimeRate,
        errorRate: card.errorRate,
        satisfaction: card.satisfaction,
        processingTimeMs: card.processingTimeMs,
        ordersPerMinute: card.ordersPerMinute,
        planTop: lines[0].trim(),
        planIndex: indexLine,
      });
    }

    console.log('\nscorecard (GET /v1/admin/kpis, one statement, every breakdown) on PostgreSQL');
    console.log('window   closed orders   median ms   runs ms');
    for (const r of results) {
      console.log(
        `${String(r.window).padEnd(8)} ${String(r.closedOrders).padStart(13)} ${String(r.medianMs).padStart(11)}   ${(r.runsMs as number[]).join(', ')}`,
      );
    }
    for (const r of results) {
      console.log(
        `\nEXPLAIN closed orders, ${r.window}:\n  ${r.planTop}\n  ${r.planIndex ?? '(no index scan)'}`,
      );
    }
    const out = {
      orders: orderCount,
      runs: RUNS,
      generateMs: generateMs === null ? null : Math.round(generateMs),
      server: (await admin`SELECT current_setting('server_version') AS v`)[0].v,
      windows: results,
    };
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/kpis.json', `${JSON.stringify(out, null, 2)}\n`);
    console.log('\nwritten bench/results/kpis.json');
  } finally {
    await database.close();
    if (keep) console.log(`kept database ${name}`);
    else await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
