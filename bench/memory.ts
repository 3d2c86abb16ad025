/**
 * Redis memory per order (`npm run bench`, or `npx tsx bench/memory.ts`).
 *
 *   queued   the engine's API alone (startProcess('api'), no workers) on a fresh PostgreSQL
 *            database takes BENCH_MEMORY_ORDERS (1,000) orders (POST /v1/orders through the app);
 *            every key under the run's QUEUE_PREFIX is then sized with MEMORY USAGE (SAMPLES 0: every
 *            element), grouped by what it is (job hashes, a queue's prioritized set, events stream, …,
 *            the shop's rate-limit log), and divided by the orders. INFO memory's used_memory delta is
 *            given too (server-wide: on a shared Redis other clients move it).
 *   drained  the same process restarted as role all (every worker, notification rate limits off)
 *            with a zero-latency carrier simulator in a child process sending in_transit/delivered at
 *            20/50 ms, until every order is delivered and no job waits; what remains under the prefix
 *            is sized the same way: finished jobs BullMQ keeps (removeOnComplete: 1 h, at most 1,000
 *            per queue), each queue's events stream (trimmed near 10,000 entries), rate-limit logs
 *            (60 s), locks and breaker state. BENCH_MEMORY_ORDERS larger than 1,000 × the queues
 *            shows the bound: what remains stops growing with the orders.
 * Env also BENCH_POSTGRES_URL, REDIS_URL, BENCH_MEMORY_TIMEOUT_MS (300000).
 * Writes bench/results/memory.json.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { surgeOrders } from '../src/demo/surge.js';
import { startProcess } from '../src/runtime.js';
import {
  createDatabase,
  deleteKeys,
  fmt,
  pendingJobs,
  printTable,
  redisClient,
  scanKeys,
  sleep,
  writeResult,
  adminCaller,
  seedBenchWorld,
  freePort,
} from './lib/common.js';
import { Outside } from './lib/outside-client.js';

const env = process.env;
const N = Number(env.BENCH_MEMORY_ORDERS ?? 1000);
const TIMEOUT_MS = Number(env.BENCH_MEMORY_TIMEOUT_MS ?? 300_000);
const RUN = randomBytes(4).toString('hex');
const PREFIX = `surgeline-bench-memory-${RUN}`;
const ADMIN = 'bench-admin-token';
const SKUS = ['A', 'B', 'C', 'D', 'E', 'F'];
const REGION = 'bench-region';
const QUEUE_PARTS = new Set([
  'wait',
  'paused',
  'active',
  'prioritized',
  'delayed',
  'completed',
  'failed',
  'events',
  'id',
  'meta',
  'pc',
  'marker',
  'stalled',
  'stalled-check',
  'limiter',
  'metrics',
  'de',
  'repeat',
  'waiting-children',
]);

interface Sized {
  keys: number;
  bytes: number;
  /** bytes and key count by what the key is. */
  byKind: Record<string, { keys: number; bytes: number }>;
  /** Finished jobs kept, per queue (completed + failed sets). */
  retainedJobs: Record<string, number>;
  usedMemory: number;
}

async function usedMemory(redis: Redis) {
  return Number((await redis.info('memory')).match(/used_memory:(\d+)/)?.[1] ?? 0);
}

/** Every key under the prefix, sized and grouped. */
async function size(redis: Redis): Promise<Sized> {
  const keys = await scanKeys(redis, PREFIX);
  // A queue is whatever has BullMQ's own keys under it (`<queue>:meta`, `:id`, `:events`, …), whatever its name.
  const queues = new Set(
    keys
      .map((k) => k.slice(PREFIX.length + 1).split(':'))
      .filter((parts) => parts.length === 2 && QUEUE_PARTS.has(parts[1]))
      .map((parts) => parts[0]),
  );
  const byKind: Sized['byKind'] = {};
  let bytes = 0;
  for (let i = 0; i < keys.length; i += 200) {
    const batch = keys.slice(i, i + 200);
    const pipe = redis.pipeline();
    for (const k of batch) pipe.memory('USAGE', k, 'SAMPLES', 0);
    const answers = (await pipe.exec()) ?? [];
    batch.forEach((key, j) => {
      const b = Number(answers[j]?.[1] ?? 0);
      bytes += b;
      const rest = key.slice(PREFIX.length + 1).split(':');
      let kind: string;
      if (queues.has(rest[0])) {
        const part = rest.slice(1).join(':');
        if (QUEUE_PARTS.has(part)) kind = `queue ${part}`;
        else if (rest.length === 2) kind = 'job hash';
        else kind = `job ${rest.slice(2).join(':')}`;
      } else kind = rest[0];
      const entry = (byKind[kind] ??= { keys: 0, bytes: 0 });
      entry.keys++;
      entry.bytes += b;
    });
  }
  const retainedJobs: Record<string, number> = {};
  for (const q of queues) {
    const kept =
      (await redis.zcard(`${PREFIX}:${q}:completed`)) + (await redis.zcard(`${PREFIX}:${q}:failed`));
    if (kept > 0) retainedJobs[q] = kept;
  }
  return { keys: keys.length, bytes, byKind, retainedJobs, usedMemory: await usedMemory(redis) };
}

async function main() {
  const database = await createDatabase('memory');
  const redis = redisClient();
  const outside = new Outside();
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const baseEnv = {
    ...env,
    DATABASE_URL: database.url,
    QUEUE_PREFIX: PREFIX,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: env.LOG_LEVEL ?? 'silent',
    PORT: String(port),
    HOST: '127.0.0.1',
    SMS_RATE_PER_SECOND: '0',
    EMAIL_RATE_PER_SECOND: '0',
    SHED_STANDARD_AT: '100000000',
    SHED_EXPRESS_AT: '100000000',
    SHED_ALL_AT: '100000000',
  };
  const check = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    const empty = await size(redis);
    // Queued: the API alone takes every order; nothing consumes.
    const apiOnly = await startProcess('api', loadConfig(baseEnv));
    await apiOnly.ready;
    const carrier = await outside.call<{ url: string }>('carrier', {
      carrierId: 'bench',
      webhookSecret: 'bench-secret-1',
      eventsBaseUrl: api,
      progress: { inTransitAfterMs: 20, deliveredAfterMs: 50 },
    });
    const apiKey = await seedBenchWorld(adminCaller(apiOnly.app, ADMIN), {
      carrierId: 'bench',
      carrierUrl: carrier.url,
      webhookSecret: 'bench-secret-1',
      region: REGION,
      skus: SKUS,
    });
    const before = await size(redis);
    const bodies = surgeOrders(N, SKUS, [REGION]);
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < N) {
          const i = next++;
          const r = await apiOnly.app.inject({
            method: 'POST',
            url: '/v1/orders',
            headers: { authorization: `Bearer ${apiKey}`, 'idempotency-key': `${RUN}-${i}` },
            payload: bodies[i],
          });
          if (r.statusCode >= 300) throw new Error(`POST /v1/orders → ${r.statusCode}: ${r.body}`);
        }
      }),
    );
    await apiOnly.stop();
    const queued = await size(redis);

    // Drained: every worker on, until every order is delivered and nothing waits.
    const all = await startProcess('all', loadConfig(baseEnv));
    await all.ready;
    const start = Date.now();
    for (let quiet = 0; quiet < 3;) {
      if (Date.now() - start > TIMEOUT_MS) throw new Error(`not drained after ${TIMEOUT_MS} ms`);
      await sleep(250);
      const [{ n }] = await check`select count(*)::int as n from orders where status = 'delivered'`;
      quiet = n >= N && (await pendingJobs(redis, PREFIX)) === 0 ? quiet + 1 : 0;
    }
    const drainMs = Date.now() - start;
    await all.stop();
    const drained = await size(redis);

    const kinds = [...new Set([...Object.keys(queued.byKind), ...Object.keys(drained.byKind)])].sort(
      (a, b) => (queued.byKind[b]?.bytes ?? 0) - (queued.byKind[a]?.bytes ?? 0),
    );
    const delta = (s: Sized) => s.bytes - before.bytes;
    console.log(
      `\nSurgeline Redis memory: ${N} orders (MEMORY USAGE over the prefix's keys; bytes per order)\n`,
    );
    printTable(
      ['keys', 'queued: keys', 'queued B/order', 'drained: keys', 'drained B/order'],
      [
        ...kinds.map((k) => [
          k,
          queued.byKind[k]?.keys ?? 0,
          fmt((queued.byKind[k]?.bytes ?? 0) / N, 0),
          drained.byKind[k]?.keys ?? 0,
          fmt((drained.byKind[k]?.bytes ?? 0) / N, 0),
        ]),
        [
          'all (less the set-up keys)',
          queued.keys - before.keys,
          fmt(delta(queued) / N, 0),
          drained.keys - before.keys,
          fmt(delta(drained) / N, 0),
        ],
        [
          'INFO used_memory delta',
          '',
          fmt((queued.usedMemory - before.usedMemory) / N, 0),
          '',
          fmt((drained.usedMemory - before.usedMemory) / N, 0),
        ],
      ],
    );
    console.log(`\nfinished jobs kept after draining, per queue: ${JSON.stringify(drained.retainedJobs)}`);
    console.log(
      `drained in ${fmt(drainMs / 1000, 1)} s; ${fmt(delta(drained) / 1024, 0)} KiB remain under the prefix in all`,
    );
    writeResult('memory.json', {
      at: new Date().toISOString(),
      orders: N,
      bytesPerQueuedOrder: delta(queued) / N,
      bytesPerOrderAfterDrain: delta(drained) / N,
      bytesRemainingAfterDrain: delta(drained),
      usedMemoryDeltaPerQueuedOrder: (queued.usedMemory - before.usedMemory) / N,
      drainMs,
      empty,
      beforeOrders: before,
      queued,
      drained,
    });
  } finally {
    await outside.close();
    await check.end({ timeout: 5 });
    await deleteKeys(redis, PREFIX).catch(() => undefined);
    redis.disconnect();
    await database.drop();
  }
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).stack}`);
  process.exit(1);
});
