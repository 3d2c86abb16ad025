/**
 * Pipeline throughput (`npm run bench`, or `npx tsx bench/pipeline.ts`): orders/s from the first
 * POST until every order is booked (status dispatched, as the engine records it), against a
 * no-op BullMQ chain with the same three hops, measured in the same run.
 *
 *   engine    startProcess('all') in this process on a fresh PostgreSQL database, default settings
 *             (WORKER_CONCURRENCY 8, notification rate limits on), one zero-latency carrier simulator
 *             without progress events; the shop (bench/lib/outside.ts, a child process, as is the
 *             carrier) POSTs BENCH_PIPELINE_ORDERS (500) over BENCH_PIPELINE_CONNECTIONS (20)
 *             keep-alive connections; the end is polled every 50 ms from the orders table;
 *   baseline  three BullMQ queues under a prefix of their own — allocation → dispatch → booking —
 *             each with a Worker of the same concurrency whose processor only adds the next hop's job
 *             (job id from the order, a priority, the same removeOnComplete); the same number of
 *             first-hop jobs added as many at a time as there are connections; the end is the
 *             last booking job done.
 * An unmeasured warm-up of BENCH_PIPELINE_WARMUP (100) orders runs through each first. Reported:
 * orders/s for both and engine ÷ chain (target ≥ 0.3), and the time the POSTs alone took.
 * Env also BENCH_POSTGRES_URL, REDIS_URL, BENCH_PIPELINE_TIMEOUT_MS (300000).
 * Writes bench/results/pipeline.json.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { startProcess } from '../src/runtime.js';
import { Redis } from 'ioredis';
import {
  createDatabase,
  deleteKeys,
  REDIS_URL,
  fmt,
  printTable,
  redisClient,
  writeResult,
  freePort,
} from './lib/common.js';
import { enginePipeline } from './lib/engine-pipeline.js';
import { Outside } from './lib/outside-client.js';

const env = process.env;
const N = Number(env.BENCH_PIPELINE_ORDERS ?? 500);
const WARMUP = Number(env.BENCH_PIPELINE_WARMUP ?? 100);
const CONNECTIONS = Number(env.BENCH_PIPELINE_CONNECTIONS ?? 20);
const TIMEOUT_MS = Number(env.BENCH_PIPELINE_TIMEOUT_MS ?? 300_000);
const RUN = randomBytes(4).toString('hex');
const PREFIX = `surgeline-bench-pipeline-${RUN}`;
const CHAIN_PREFIX = `surgeline-bench-chain-${RUN}`;
const ADMIN = 'bench-admin-token';
const SKUS = ['A', 'B', 'C', 'D', 'E', 'F'];
const REGION = 'bench-region';

interface Run {
  orders: number;
  wallMs: number;
  intakeMs: number;
  perSecond: number;
}

/** The no-op chain: three hops, each processor adding the next job. */
async function chain(count: number, concurrency: number, tag: string): Promise<Run> {
  const connection = redisClient();
  const opts = { removeOnComplete: { age: 3600, count: 1000 } };
  const names = ['allocation', 'dispatch', 'booking'];
  const queues = names.map(
    (name) => new Queue(name, { connection, prefix: CHAIN_PREFIX, defaultJobOptions: opts }),
  );
  const blocking = names.map(() => new Redis(REDIS_URL, { maxRetriesPerRequest: null }));
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const workers = names.map(
    (name, hop) =>
      new Worker(
        name,
        async (job) => {
          const next = queues[hop + 1];
          if (next)
            await next.add(names[hop + 1], job.data, {
              jobId: `${names[hop + 1]}-${job.data.orderId}`,
              priority: job.opts.priority,
            });
          else if (++done === count) finish();
        },
        {
          connection: blocking[hop],
          prefix: CHAIN_PREFIX,
          concurrency,
        },
      ),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency > 0 ? CONNECTIONS : 0 }, async () => {
      while (next < count) {
        const i = next++;
        await queues[0].add(
          'allocation',
          { orderId: `${tag}-${i}`, attempt: 1 },
          { jobId: `allocation-${tag}-${i}`, priority: 1 + (i % 3) },
        );
      }
    }),
  );
  const intakeMs = performance.now() - start;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    finished,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('chain timed out')), TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  const wallMs = performance.now() - start;
  await Promise.all(
    workers.map(async (w) => {
      await w.close();
      await w.disconnect();
    }),
  );
  await Promise.all(queues.map((q) => q.close()));
  connection.disconnect();
  for (const c of blocking) c.disconnect();
  return { orders: count, wallMs, intakeMs, perSecond: (count * 1000) / wallMs };
}

async function main() {
  const database = await createDatabase('pipeline');
  const redis = redisClient();
  const outside = new Outside();
  const config = loadConfig({
    ...env,
    DATABASE_URL: database.url,
    QUEUE_PREFIX: PREFIX,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: env.LOG_LEVEL ?? 'silent',
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
  });
  const running = await startProcess('all', config);
  const check = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    await running.ready;
    const api = `http://127.0.0.1:${config.port}`;
    const engine = await enginePipeline({
      running,
      api,
      outside,
      check,
      adminToken: ADMIN,
      region: REGION,
      skus: SKUS,
      connections: CONNECTIONS,
      timeoutMs: TIMEOUT_MS,
      keyPrefix: RUN,
      label: 'engine',
    });
    const engineRun = (count: number, tag: string) => engine.run(count, tag);

    if (WARMUP > 0) await chain(WARMUP, config.workerConcurrency, 'warm');
    const base = await chain(N, config.workerConcurrency, 'run');
    if (WARMUP > 0) await engineRun(WARMUP, 'warm');
    const eng = await engineRun(N, 'run');
    const ratio = eng.perSecond / base.perSecond;

    console.log(
      `\nSurgeline pipeline: ${N} orders, POST → booked at a zero-latency carrier (engine: role all on PostgreSQL ${database.name}) ` +
        `vs a no-op BullMQ chain allocation → dispatch → booking, concurrency ${config.workerConcurrency}\n`,
    );
    printTable(
      ['run', 'orders', 'wall s', 'orders/s', 'adds/POSTs s'],
      [
        [
          'no-op BullMQ chain (baseline)',
          base.orders,
          fmt(base.wallMs / 1000, 2),
          fmt(base.perSecond, 0),
          fmt(base.intakeMs / 1000, 2),
        ],
        [
          'engine POST → booked',
          eng.orders,
          fmt(eng.wallMs / 1000, 2),
          fmt(eng.perSecond, 0),
          fmt(eng.intakeMs / 1000, 2),
        ],
      ],
    );
    console.log(`\nengine ÷ chain: ${fmt(ratio, 3)} (target ≥ 0.3${ratio >= 0.3 ? ', met' : ', missed'})`);
    writeResult('pipeline.json', {
      at: new Date().toISOString(),
      orders: N,
      warmup: WARMUP,
      connections: CONNECTIONS,
      workerConcurrency: config.workerConcurrency,
      baseline: base,
      engine: eng,
      engineVsBaseline: ratio,
      target: { ratio: 0.3, met: ratio >= 0.3 },
    });
  } finally {
    await outside.close();
    await running.stop().catch(() => undefined);
    await check.end({ timeout: 5 });
    await deleteKeys(redis, PREFIX).catch(() => undefined);
    await deleteKeys(redis, CHAIN_PREFIX).catch(() => undefined);
    redis.disconnect();
    await database.drop();
  }
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).stack}`);
  process.exit(1);
});
