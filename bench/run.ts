/**
 * `npm run bench`: intake and pipeline throughput on in-memory PGlite and the local Redis.
 * Machines here are noisy, so every figure is also given as a ratio to a baseline measured in
 * the same process a moment before (a bare GET /healthz through the same Fastify app).
 * Prints a table and writes bench/results/bench.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { count, eq } from 'drizzle-orm';
import { loadConfig } from '../src/config.js';
import { orders } from '../src/db/schema.js';
import { startCarrierSimulator } from '../src/demo/carrier-simulator.js';
import { surgeOrders } from '../src/demo/surge.js';
import { startProcess } from '../src/runtime.js';

const N = Number(process.env.BENCH_ORDERS ?? 500);
const ADMIN = 'bench-admin-token';

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main() {
  const prefix = `surgeline-bench-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: 'memory://',
    QUEUE_PREFIX: prefix,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
  });
  const running = await startProcess('all', config);
  await running.ready;
  const { app, ctx } = running;
  const api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const admin = { authorization: `Bearer ${ADMIN}` };
  const carrier = await startCarrierSimulator({
    carrierId: 'bench',
    webhookSecret: 'bench-secret-1',
    eventsBaseUrl: api,
    progress: false,
  });
  await app.inject({
    method: 'POST',
    url: '/v1/admin/carriers',
    headers: admin,
    payload: {
      id: 'bench',
      name: 'Bench',
      kind: 'http',
      baseUrl: carrier.url,
      webhookSecret: 'bench-secret-1',
      regions: ['*'],
      rank: 1,
    },
  });
  const shop = (
    await app.inject({
      method: 'POST',
      url: '/v1/admin/shops',
      headers: admin,
      payload: { name: 'Bench', rateLimitPerMinute: 1_000_000 },
    })
  ).json() as { apiKey: string };
  await app.inject({
    method: 'POST',
    url: '/v1/admin/warehouses',
    headers: admin,
    payload: { id: 'wh-bench', name: 'Bench', region: 'bench-region' },
  });
  const skus = ['A', 'B', 'C'];
  for (const sku of skus) {
    await app.inject({
      method: 'PUT',
      url: '/v1/admin/inventory',
      headers: admin,
      payload: { warehouseId: 'wh-bench', sku, quantity: 1_000_000 },
    });
  }
  const bodies = surgeOrders(N, skus, ['bench-region']);

  const baselineMs = await timed(async () => {
    for (let i = 0; i < N; i++) await app.inject({ url: '/healthz' });
  });
  const intakeMs = await timed(async () => {
    for (let i = 0; i < N; i++) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: { authorization: `Bearer ${shop.apiKey}`, 'idempotency-key': `bench-${i}` },
        payload: bodies[i],
      });
      if (response.statusCode !== 202)
        throw new Error(`intake answered ${response.statusCode}: ${response.body}`);
    }
  });
  // The workers were already draining while intake ran; wait until every order is dispatched.
  const pipelineMs =
    intakeMs +
    (await timed(async () => {
      for (;;) {
        const [row] = await ctx.db.select({ n: count() }).from(orders).where(eq(orders.status, 'dispatched'));
        if (Number(row.n) >= N) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }));

  const rows = [
    { measure: 'GET /healthz (baseline)', perOpMs: baselineMs / N, perSecond: (N * 1000) / baselineMs },
    { measure: 'POST /v1/orders (intake)', perOpMs: intakeMs / N, perSecond: (N * 1000) / intakeMs },
    {
      measure: 'intake → dispatched (pipeline)',
      perOpMs: pipelineMs / N,
      perSecond: (N * 1000) / pipelineMs,
    },
  ].map((r) => ({ ...r, vsBaseline: r.perOpMs / (baselineMs / N) }));

  console.log(`\nSurgeline bench: ${N} orders, in-memory PGlite, Redis ${config.redisUrl}\n`);
  console.log('measure                           ms/op     ops/s   × baseline');
  for (const r of rows) {
    console.log(
      `${r.measure.padEnd(32)} ${r.perOpMs.toFixed(3).padStart(7)} ${r.perSecond.toFixed(0).padStart(9)} ${r.vsBaseline.toFixed(1).padStart(10)}`,
    );
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/bench.json',
    JSON.stringify({ orders: N, at: new Date().toISOString(), rows }, null, 2),
  );
  console.log('\nwritten: bench/results/bench.json');

  await carrier.close();
  await Promise.all(
    ctx.queues.stageQueues().map((q) => q.obliterate({ force: true }).catch(() => undefined)),
  );
  await running.stop();
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});
