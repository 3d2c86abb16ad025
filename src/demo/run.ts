import type { AddressInfo } from 'node:net';
import { inArray } from 'drizzle-orm';
import { ConfigError, loadConfig } from '../config.js';
import { orderEvents, orders } from '../db/schema.js';
import { TERMINAL, type OrderStatus } from '../domain/status.js';
import { startProcess } from '../runtime.js';
import { startCarrierSimulator } from './carrier-simulator.js';
import { buildReport, formatReport } from './report.js';
import { surgeOrders } from './surge.js';

/**
 * `npm run demo`: the whole engine in one process on in-memory PGlite, two simulated carriers
 * (one flaky), demo shop, warehouses and stock, then a surge of orders with a progress bar and
 * a report. The server stays up for Bull Board until Ctrl-C (DEMO_EXIT=1 exits after the report).
 */
const env = process.env;
const ORDERS = Number(env.DEMO_ORDERS ?? 300);
const TIMEOUT_MS = Number(env.DEMO_TIMEOUT_MS ?? 180_000);
const CONCURRENCY = 20;

async function main() {
  const config = loadConfig({
    ...env,
    DATABASE_URL: env.DATABASE_URL ?? 'memory://',
    QUEUE_PREFIX: env.QUEUE_PREFIX ?? 'surgeline-demo',
    LOG_LEVEL: env.LOG_LEVEL ?? 'error', // keeps the progress bar readable; retries show in the report
    ADMIN_TOKEN: env.ADMIN_TOKEN ?? 'demo-admin-token',
    DISPATCH_ATTEMPTS: env.DISPATCH_ATTEMPTS ?? '6',
  });
  const running = await startProcess('all', config);
  // A fresh in-memory database: jobs a previous demo left under this prefix name nothing here.
  await Promise.all(
    Object.values(running.ctx.queues.queues).map((q) => q.obliterate({ force: true }).catch(() => undefined)),
  );
  await running.ready;
  const { port } = running.app.server.address() as AddressInfo;
  const api = `http://127.0.0.1:${port}`;
  const admin = { authorization: `Bearer ${config.adminToken}`, 'content-type': 'application/json' };
  const call = async (
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string> = admin,
  ) => {
    const response = await fetch(`${api}${path}`, { method, headers, body: JSON.stringify(body) });
    const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (response.status >= 400)
      throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(json)}`);
    return json;
  };

  const progress = { inTransitAfterMs: 800, deliveredAfterMs: 1600 };
  const swift = await startCarrierSimulator({
    carrierId: 'swift',
    webhookSecret: 'swift-secret-0001',
    apiKey: 'swift-key',
    eventsBaseUrl: api,
    failureRate: 0.2,
    latencyMs: { min: 20, max: 150 },
    transitHours: 24,
    progress,
  });
  const steady = await startCarrierSimulator({
    carrierId: 'steady',
    webhookSecret: 'steady-secret-001',
    eventsBaseUrl: api,
    failureRate: 0.02,
    latencyMs: { min: 50, max: 250 },
    refuseRegions: ['wuhan-jiangan'],
    transitHours: 48,
    progress,
  });
  await call('POST', '/v1/admin/carriers', {
    id: 'swift',
    name: 'Swift Express (flaky)',
    kind: 'http',
    baseUrl: swift.url,
    apiKey: 'swift-key',
    webhookSecret: 'swift-secret-0001',
    regions: ['*'],
    rank: 1,
    transitHours: 24,
  });
  await call('POST', '/v1/admin/carriers', {
    id: 'steady',
    name: 'Steady Post',
    kind: 'http',
    baseUrl: steady.url,
    webhookSecret: 'steady-secret-001',
    regions: ['*'],
    rank: 2,
    transitHours: 48,
  });
  const shop = (await call('POST', '/v1/admin/shops', {
    name: 'Lockdown Groceries',
    rateLimitPerMinute: 100_000,
  })) as {
    apiKey: string;
  };
  const warehouses = [
    ['wh-pudong', 'shanghai-pudong'],
    ['wh-minhang', 'shanghai-minhang'],
    ['wh-wuhan', 'wuhan-jiangan'],
  ];
  const stock: Record<string, number> = {
    'MASK-N95': 400,
    THERMOMETER: 60,
    'RICE-5KG': 150,
    SANITIZER: 200,
    'BABY-FORMULA': 25,
  };
  for (const [id, region] of warehouses) {
    await call('POST', '/v1/admin/warehouses', { id, name: id, region });
    for (const [sku, quantity] of Object.entries(stock))
      await call('PUT', '/v1/admin/inventory', { warehouseId: id, sku, quantity });
  }

  console.log(`Surgeline demo: ${ORDERS} orders against ${api} (carriers: swift 20% failures, steady 2%)`);
  const bodies = surgeOrders(
    ORDERS,
    Object.keys(stock),
    warehouses.map(([, region]) => region),
  );
  const ids: string[] = [];
  let rejected = 0;
  const shopHeaders = (key: string) => ({
    authorization: `Bearer ${shop.apiKey}`,
    'idempotency-key': key,
    'content-type': 'application/json',
  });
  for (let i = 0; i < bodies.length; i += CONCURRENCY) {
    await Promise.all(
      bodies.slice(i, i + CONCURRENCY).map(async (body, j) => {
        const response = await fetch(`${api}/v1/orders`, {
          method: 'POST',
          headers: shopHeaders(`demo-${i + j}`),
          body: JSON.stringify(body),
        });
        const json = (await response.json()) as { id?: string };
        if (response.status === 202 && json.id) ids.push(json.id);
        else rejected++;
      }),
    );
    drawProgress(ids.length, 0, ORDERS, 'posting');
  }

  const started = Date.now();
  let statuses: { id: string; status: string }[] = [];
  while (Date.now() - started < TIMEOUT_MS) {
    statuses = await running.ctx.db.select({ id: orders.id, status: orders.status }).from(orders);
    const done = statuses.filter((o) => TERMINAL.has(o.status as OrderStatus)).length;
    drawProgress(ids.length, done, ids.length, 'processing');
    if (done >= ids.length) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  process.stdout.write('\n');

  const rows = await running.ctx.db.select().from(orders);
  const events = await running.ctx.db
    .select({ orderId: orderEvents.orderId, status: orderEvents.status, recordedAt: orderEvents.recordedAt })
    .from(orderEvents)
    .where(inArray(orderEvents.orderId, ids.length ? ids : ['00000000-0000-0000-0000-000000000000']));
  console.log(formatReport(buildReport(rows, events)));
  console.log(`rejected at intake ${rejected}`);
  console.log(
    `carrier calls    swift ${swift.stats.calls} (${swift.stats.transient} transient), steady ${steady.stats.calls} (${steady.stats.transient} transient, ${steady.stats.refused} refused)`,
  );

  const stopAll = async () => {
    await swift.close();
    await steady.close();
    await running.stop();
  };
  if (env.DEMO_EXIT === '1') {
    await stopAll();
    process.exit(0);
  }
  console.log(`\nBull Board: ${api}/admin/queues?token=${encodeURIComponent(config.adminToken)}`);
  console.log(`API docs:   ${api}/docs      Metrics: ${api}/metrics      Ctrl-C to stop`);
  const onSignal = () => void stopAll().then(() => process.exit(0));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

let lastPrinted = '';
function drawProgress(posted: number, done: number, total: number, phase: string) {
  const width = 30;
  const ratio = total ? (phase === 'posting' ? posted : done) / total : 1;
  const filled = Math.round(ratio * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  const line = `${phase.padEnd(10)} [${bar}] ${phase === 'posting' ? posted : done}/${total}`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}`);
  else {
    // Without a terminal, a line per tenth of the way, not one per tick.
    const step = `${phase}:${Math.floor(ratio * 10)}`;
    if (step !== lastPrinted) process.stdout.write(`${line}\n`);
    lastPrinted = step;
  }
}

main().catch((error) => {
  console.error(
    error instanceof ConfigError
      ? `configuration error: ${error.message}`
      : `demo failed: ${(error as Error).message}`,
  );
  process.exit(1);
});
