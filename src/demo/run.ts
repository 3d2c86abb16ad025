import type { AddressInfo } from 'node:net';
import { inArray } from 'drizzle-orm';
import { ConfigError, loadConfig } from '../config.js';
import { carrierAttempts, orderEvents, orders, shipments } from '../db/schema.js';
import { TERMINAL, type OrderStatus } from '../domain/status.js';
import { startProcess } from '../runtime.js';
import { startCarrierSimulator } from './carrier-simulator.js';
import { NoRedisError, redisAnswers, startPrivateRedis } from './private-redis.js';
import {
  buildReport,
  formatLogistics,
  formatReport,
  formatScorecard,
  formatSupply,
  type DemoScorecard,
  logisticsReport,
  supplyReport,
} from './report.js';
import { feedbackScore, seededRandom, surgeOrders } from './surge.js';

/**
 * `npm run demo`: the whole engine in one process on in-memory PGlite, two simulated carriers
 * (one flaky), demo shop, warehouses and stock, then a surge of orders with a progress bar and
 * a report. The server stays up for Bull Board until Ctrl-C (DEMO_EXIT=1 exits after the report).
 * It listens on 127.0.0.1 unless HOST is set. With REDIS_URL unset and no Redis on 127.0.0.1:6379
 * it runs a private redis-server of its own, stopped with the demo.
 */
const env = process.env;
const ORDERS = Number(env.DEMO_ORDERS ?? 300);
const TIMEOUT_MS = Number(env.DEMO_TIMEOUT_MS ?? 180_000);
const CONCURRENCY = 20;
/** The logistics story: swift is down this long from the start of the surge… */
const OUTAGE_MS = Number(env.DEMO_OUTAGE_MS ?? 60_000);
/** …and this district is sealed this long. */
const LOCKDOWN_MS = Number(env.DEMO_LOCKDOWN_MS ?? 20_000);
const LOCKED_REGION = 'shanghai-minhang';
/** The supply story: a supplier halts once a third of the surge is in, a restock is received this
 * long after, and the supplier is back this long after the halt. */
const RESTOCK_AFTER_MS = Number(env.DEMO_RESTOCK_MS ?? 12_000);
const SUPPLIER_HALT_MS = Number(env.DEMO_SUPPLIER_HALT_MS ?? 25_000);
const HALTED_SUPPLIER = 'huadong-medical';
/** The demo's map: how far apart its regions are (REGION_DISTANCES; README: Allocation). */
const DEMO_DISTANCES =
  'shanghai-pudong:shanghai-minhang=25,shanghai-pudong:wuhan-jiangan=840,shanghai-minhang:wuhan-jiangan=820';
/** How many times the demo's operator re-drives what is left in the dead-letter view. */
const REDRIVE_ROUNDS = 3;

/** What the demo started, stopped last-started first on every way out (signal, DEMO_EXIT, error). */
const stops: (() => Promise<unknown>)[] = [];
let stopping: Promise<void> | undefined;
function stopEverything(): Promise<void> {
  stopping ??= (async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  })();
  return stopping;
}
async function exit(code: number): Promise<never> {
  // Bounded like the engine's own shutdown; a private Redis is killed on exit regardless.
  setTimeout(() => process.exit(code), (Number(env.SHUTDOWN_TIMEOUT_MS) || 10_000) + 2000).unref();
  await stopEverything();
  process.exit(code);
}
// From the start, so that a Ctrl-C during the surge stops the private Redis too; a second signal
// (npm forwards the terminal's SIGINT once more) joins the stop already under way.
process.on('SIGINT', () => void exit(0));
process.on('SIGTERM', () => void exit(0));

/** REDIS_URL, else the default 127.0.0.1:6379 if a Redis answers there, else a private one. */
async function demoRedisUrl(): Promise<string | undefined> {
  if (env.REDIS_URL) return env.REDIS_URL;
  if (await redisAnswers('127.0.0.1', 6379)) return undefined;
  const redis = await startPrivateRedis();
  stops.push(() => redis.stop());
  console.log(
    `no Redis on 127.0.0.1:6379: started a private Redis at ${redis.url} (redis-server pid ${redis.pid}); it stops with the demo`,
  );
  return redis.url;
}

async function main() {
  const redisUrl = await demoRedisUrl();
  const config = loadConfig({
    ...env,
    REDIS_URL: redisUrl,
    HOST: env.HOST || '127.0.0.1',
    DATABASE_URL: env.DATABASE_URL ?? 'memory://',
    QUEUE_PREFIX: env.QUEUE_PREFIX ?? 'surgeline-demo',
    LOG_LEVEL: env.LOG_LEVEL ?? 'error', // keeps the progress bar readable; retries show in the report
    ADMIN_TOKEN: env.ADMIN_TOKEN ?? 'demo-admin-token',
    REGION_DISTANCES: env.REGION_DISTANCES ?? DEMO_DISTANCES,
  });
  const running = await startProcess('all', config);
  stops.push(() => running.stop());
  // A fresh in-memory database: jobs a previous demo left under this prefix name nothing here.
  await Promise.all(
    running.ctx.queues.stageQueues().map((q) => q.obliterate({ force: true }).catch(() => undefined)),
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
  stops.push(() => swift.close());
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
  stops.push(() => steady.close());
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
  // Stock is uneven on purpose: thermometers and baby formula are short everywhere, so orders
  // split across warehouses, and wh-minhang belongs to the supplier that halts mid-surge.
  await call('POST', '/v1/admin/suppliers', { id: HALTED_SUPPLIER, name: 'Huadong Medical Supply' });
  const warehouses: [string, string, string | undefined][] = [
    ['wh-pudong', 'shanghai-pudong', undefined],
    ['wh-minhang', 'shanghai-minhang', HALTED_SUPPLIER],
    ['wh-wuhan', 'wuhan-jiangan', undefined],
  ];
  const stock: Record<string, [number, number, number]> = {
    'MASK-N95': [300, 300, 300],
    THERMOMETER: [30, 40, 20],
    'RICE-5KG': [150, 150, 150],
    SANITIZER: [90, 60, 60],
    'BABY-FORMULA': [15, 20, 10],
  };
  for (const [i, [id, region, supplierId]] of warehouses.entries()) {
    await call('POST', '/v1/admin/warehouses', {
      id,
      name: id,
      region,
      ...(supplierId ? { supplierId } : {}),
    });
    for (const [sku, quantities] of Object.entries(stock))
      await call('PUT', '/v1/admin/inventory', { warehouseId: id, sku, quantity: quantities[i] });
  }

  console.log(`Surgeline demo: ${ORDERS} orders against ${api} (carriers: swift 20% failures, steady 2%)`);
  // The lockdown story: a district sealed, and swift's API down, as the surge starts.
  await call('PUT', `/v1/admin/regions/${LOCKED_REGION}/lockdown`, {
    reason: 'district sealed by the health authority',
  });
  swift.set({ failureRate: 1 });
  console.log(
    `${LOCKED_REGION} locked for ${LOCKDOWN_MS / 1000} s; swift down for ${OUTAGE_MS / 1000} s (orders fail over to steady, which refuses wuhan-jiangan)`,
  );
  const lockdownLifted = new Promise<void>((resolve) =>
    setTimeout(() => {
      call('DELETE', `/v1/admin/regions/${LOCKED_REGION}/lockdown`, undefined)
        .catch((error) => console.error(`lifting the lockdown failed: ${(error as Error).message}`))
        .finally(resolve);
    }, LOCKDOWN_MS).unref(),
  );
  const outageOver = new Promise<void>((resolve) =>
    setTimeout(() => {
      swift.set({ failureRate: 0.2 });
      resolve();
    }, OUTAGE_MS).unref(),
  );
  const bodies = surgeOrders(
    ORDERS,
    Object.keys(stock),
    warehouses.map(([, region]) => region),
  );
  // Community group buys (one volunteer orders for a whole sealed compound): more masks than any
  // one warehouse holds, so each ships split from two. Early in the surge, one per 150 orders.
  for (let n = 0; n < Math.ceil(ORDERS / 150); n++) {
    const body = bodies[Math.floor((n * ORDERS) / 600)];
    body.priority = 'essential';
    body.items = [{ sku: 'MASK-N95', quantity: 350 }];
  }

  // The supply story, started once a third of the surge is in: the supplier halts (its warehouse
  // counts as empty), restocks of the short SKUs are announced for two hours from now — orders they
  // can fill wait backordered instead of failing — then received, and the supplier comes back.
  const alertsSeen = new Map<string, { warehouseId: string; sku: string }>();
  const watchAlerts = async () => {
    const alerts = (await call('GET', '/v1/admin/inventory/alerts', undefined)) as {
      items: { warehouseId: string; sku: string }[];
    };
    for (const a of alerts.items) alertsSeen.set(`${a.warehouseId}:${a.sku}`, a);
  };
  let supplyStory: Promise<void> | undefined;
  const startSupplyStory = async () => {
    await call('PATCH', `/v1/admin/suppliers/${HALTED_SUPPLIER}`, { available: false });
    const eta = new Date(Date.now() + 2 * 3_600_000).toISOString();
    const restocks = await Promise.all(
      ['THERMOMETER', 'BABY-FORMULA'].map(
        (sku) =>
          call('POST', '/v1/admin/inventory/restocks', {
            warehouseId: 'wh-pudong',
            sku,
            quantity: 150,
            eta,
          }) as Promise<{
            id: string;
          }>,
      ),
    );
    console.log(
      `\nsupplier ${HALTED_SUPPLIER} halted (wh-minhang counts as empty) for ${SUPPLIER_HALT_MS / 1000} s; restocks of THERMOMETER and BABY-FORMULA due, received in ${RESTOCK_AFTER_MS / 1000} s`,
    );
    const later = (ms: number, what: () => Promise<unknown>) =>
      new Promise<void>((resolve) =>
        setTimeout(() => {
          what()
            .catch((error) => console.error(`demo supply story: ${(error as Error).message}`))
            .finally(resolve);
        }, ms).unref(),
      );
    await Promise.all([
      later(RESTOCK_AFTER_MS, () =>
        Promise.all(restocks.map((r) => call('POST', `/v1/admin/inventory/restocks/${r.id}/receive`, {}))),
      ),
      later(SUPPLIER_HALT_MS, () =>
        call('PATCH', `/v1/admin/suppliers/${HALTED_SUPPLIER}`, { available: true }),
      ),
    ]);
  };
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
    if (!supplyStory && ids.length >= ORDERS / 3) {
      await watchAlerts();
      supplyStory = startSupplyStory();
    }
  }
  supplyStory ??= startSupplyStory();

  const started = Date.now();
  const untilAllClosed = async (phase: string) => {
    while (Date.now() - started < TIMEOUT_MS) {
      const statuses = await running.ctx.db.select({ id: orders.id, status: orders.status }).from(orders);
      const done = statuses.filter((o) => TERMINAL.has(o.status as OrderStatus)).length;
      drawProgress(ids.length, done, ids.length, phase);
      await watchAlerts().catch(() => undefined);
      if (done >= ids.length) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    process.stdout.write('\n');
  };
  await untilAllClosed('processing');

  // The operator's part: once swift is back and its breaker lets calls through again, every dead
  // letter is re-driven — again, up to REDRIVE_ROUNDS times, while swift's own 20 % faults (which
  // can re-open its breaker) send some back.
  await Promise.all([outageOver, lockdownLifted, supplyStory]);
  const swiftOpen = async () => {
    const carriers = (await call('GET', '/v1/admin/carriers', undefined)) as {
      items: { id: string; breaker: { state: string } }[];
    };
    return carriers.items.some((c) => c.id === 'swift' && c.breaker.state === 'open');
  };
  const listDeadLetters = async () => {
    const found: string[] = [];
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const query = `/v1/admin/dead-letters?limit=100${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await call('GET', query, undefined)) as {
        items: { orderId: string }[];
        nextCursor: string | null;
      };
      found.push(...page.items.map((i) => i.orderId));
      cursor = page.nextCursor;
    }
    return found;
  };
  const redriven = new Set<string>();
  let deadLetterCount = 0;
  for (let round = 1; round <= REDRIVE_ROUNDS && Date.now() - started < TIMEOUT_MS; round++) {
    while ((await swiftOpen()) && Date.now() - started < TIMEOUT_MS)
      await new Promise((r) => setTimeout(r, 500));
    const deadLetters = await listDeadLetters();
    if (deadLetters.length === 0) break;
    if (round === 1) deadLetterCount = deadLetters.length;
    console.log(`re-driving ${deadLetters.length} dead letter(s) (round ${round}) now that swift is back`);
    for (const id of deadLetters) {
      await call('POST', `/v1/admin/orders/${id}/retry`, {});
      redriven.add(id);
    }
    await untilAllClosed('re-driven');
  }

  // The customers' part: each delivered order gets its customer's score, some unhappy when late.
  const random = seededRandom(7);
  for (const order of await running.ctx.db.select().from(orders)) {
    if (order.status !== 'delivered' || !order.deliveredAt) continue;
    const onTime = order.deliveredAt <= order.initialPromisedBy;
    await call(
      'POST',
      `/v1/orders/${order.id}/feedback`,
      { score: feedbackScore(random, onTime) },
      { authorization: `Bearer ${shop.apiKey}`, 'content-type': 'application/json' },
    );
  }

  const rows = await running.ctx.db.select().from(orders);
  const events = await running.ctx.db
    .select({ orderId: orderEvents.orderId, status: orderEvents.status, recordedAt: orderEvents.recordedAt })
    .from(orderEvents)
    .where(inArray(orderEvents.orderId, ids.length ? ids : ['00000000-0000-0000-0000-000000000000']));
  console.log(formatReport(buildReport(rows, events)));
  const parcels = await running.ctx.db
    .select({ orderId: shipments.orderId, attempt: shipments.attempt, warehouseId: shipments.warehouseId })
    .from(shipments);
  console.log(formatSupply(supplyReport(rows, events, parcels), [...alertsSeen.values()]));
  const attempts = await running.ctx.db
    .select({
      shipmentId: carrierAttempts.shipmentId,
      carrierId: carrierAttempts.carrierId,
      outcome: carrierAttempts.outcome,
      id: carrierAttempts.id,
    })
    .from(carrierAttempts);
  console.log(
    formatLogistics(logisticsReport(attempts, events), {
      listed: deadLetterCount,
      redriven: redriven.size,
    }),
  );
  console.log(`rejected at intake ${rejected}`);
  console.log(
    `carrier calls    swift ${swift.stats.calls} (${swift.stats.transient} transient), steady ${steady.stats.calls} (${steady.stats.transient} transient, ${steady.stats.refused} refused)`,
  );
  console.log(
    formatScorecard((await call('GET', '/v1/admin/kpis?window=1h', undefined)) as unknown as DemoScorecard),
  );

  if (env.DEMO_EXIT === '1') await exit(0);
  console.log(`\nOperations: ${api}/admin?token=${encodeURIComponent(config.adminToken)}`);
  console.log(`Bull Board: ${api}/admin/queues?token=${encodeURIComponent(config.adminToken)}`);
  console.log(`API docs:   ${api}/docs      Metrics: ${api}/metrics      Ctrl-C to stop`);
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
  // An error from a surge cut short by Ctrl-C is not news.
  if (stopping) return;
  console.error(
    error instanceof NoRedisError
      ? error.message
      : error instanceof ConfigError
        ? `configuration error: ${error.message}`
        : `demo failed: ${(error as Error).message}`,
  );
  void exit(1);
});
