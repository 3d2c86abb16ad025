/**
 * Queue backends (`npm run bench`, or `npx tsx bench/queue-backends.ts`): the pipeline bench's
 * engine measurement — orders/s from the first POST until every order is booked (status
 * dispatched, as the engine records it) — run twice in one run, once per QUEUE_BACKEND:
 *
 *   redis     the default: BullMQ on Redis, rate limits, breakers and locks in Redis;
 *   postgres  QUEUE_BACKEND=postgres: every queue on BullMQ's PostgreSQL backend (schema
 *             `bullmq_<prefix>` in the same database as the records), coordination in its
 *             `coordination_*` tables, no Redis at all.
 *
 * Each backend gets its own fresh PostgreSQL database, its own QUEUE_PREFIX and its own engine
 * (startProcess('all') in this process, default settings: WORKER_CONCURRENCY 8, notification rate
 * limits on) with one zero-latency carrier simulator without progress events; the shop
 * (bench/lib/outside.ts, a child process, as is the carrier) POSTs BENCH_QB_ORDERS (300) over
 * BENCH_QB_CONNECTIONS (20) keep-alive connections after an unmeasured warm-up of BENCH_QB_WARMUP
 * (50); the end is polled every 50 ms from the orders table. One engine is stopped and its
 * database dropped before the next starts. Reported: orders/s for both and postgres ÷ redis, and
 * the time the POSTs alone took, with this process's CPU per order (the engine's, and the bench's
 * poll), the PostgreSQL backends' CPU per order (those of the run's database still connected at the
 * end) and how busy the whole machine was during each run (other work on it shows there). In
 * postgres mode the run also checks that BullMQ's schema exists and that nothing was written to
 * Redis under its prefix.
 * Env also BENCH_POSTGRES_URL, REDIS_URL, BENCH_QB_TIMEOUT_MS (300000), LOG_LEVEL (silent).
 * Writes bench/results/queue-backends.json.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { queueSchema } from '../src/queues/backend.js';
import { startProcess, type RunningProcess } from '../src/runtime.js';
import {
  backendCpu,
  cpuBetween,
  cpuMs,
  createDatabase,
  deleteKeys,
  fmt,
  freePort,
  machineCpuMs,
  printTable,
  redisClient,
  scanKeys,
  writeResult,
} from './lib/common.js';
import { enginePipeline } from './lib/engine-pipeline.js';
import { Outside } from './lib/outside-client.js';

const env = process.env;
const N = Number(env.BENCH_QB_ORDERS ?? 300);
const WARMUP = Number(env.BENCH_QB_WARMUP ?? 50);
const CONNECTIONS = Number(env.BENCH_QB_CONNECTIONS ?? 20);
const TIMEOUT_MS = Number(env.BENCH_QB_TIMEOUT_MS ?? 300_000);
const RUN = randomBytes(4).toString('hex');
const ADMIN = 'bench-admin-token';
const SKUS = ['A', 'B', 'C', 'D', 'E', 'F'];
const REGION = 'bench-region';
const BACKENDS = ['redis', 'postgres'] as const;
type Backend = (typeof BACKENDS)[number];

interface Run {
  orders: number;
  wallMs: number;
  intakeMs: number;
  perSecond: number;
  /** CPU of this process (the engine, and the bench's 50 ms poll) per order. */
  engineCpuMsPerOrder: number;
  /**
   * CPU of the PostgreSQL backends connected to the run's database per order (/proc; a backend
   * that closed during the run is not counted, so a floor). Records, and in postgres mode the queues.
   */
  postgresCpuMsPerOrder: number;
  /** The whole machine's busy share over the run (every core): high means the run was short of CPU. */
  machineBusy: number;
}

interface BackendRun extends Run {
  backend: Backend;
  database: string;
  queuePrefix: string;
  workerConcurrency: number;
  /** postgres only: BullMQ's schema in the run's database, and whether it was there. */
  queueSchema?: { name: string; present: boolean };
  /** Keys left under the prefix in Redis before clean-up (postgres: expected 0). */
  redisKeys: number;
}

const prefixOf = (backend: Backend) => `surgeline-bench-qb-${backend}-${RUN}`;

/** Rejects after `ms` unless `promise` settles first. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One backend: fresh database, engine, carrier and shop; warm-up, then the measured run; all cleaned up. */
async function measure(backend: Backend): Promise<BackendRun> {
  const prefix = prefixOf(backend);
  const database = await createDatabase(`qb_${backend}`);
  const redis = redisClient();
  const outside = new Outside();
  const check = postgres(database.url, { max: 1, onnotice: () => {} });
  let running: RunningProcess | undefined;
  try {
    const config = loadConfig({
      ...env,
      DATABASE_URL: database.url,
      QUEUE_BACKEND: backend,
      QUEUE_PREFIX: prefix,
      ADMIN_TOKEN: ADMIN,
      LOG_LEVEL: env.LOG_LEVEL ?? 'silent',
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
    });
    running = await startProcess('all', config);
    // On PostgreSQL a failing migration is retried for ever: give up rather than hang.
    await within(running.ready, 120_000, `${backend}: engine not ready`);
    const engine = await enginePipeline({
      running,
      api: `http://127.0.0.1:${config.port}`,
      outside,
      check,
      adminToken: ADMIN,
      region: REGION,
      skus: SKUS,
      connections: CONNECTIONS,
      timeoutMs: TIMEOUT_MS,
      keyPrefix: `${RUN}-${backend}`,
      label: backend,
    });
    // The pipeline run with the CPU it took: this process's (the engine's), the database's, the machine's.
    const engineRun = async (count: number, tag: string): Promise<Run> => {
      const pg0 = await backendCpu(database.admin, database.name);
      const cpu0 = cpuMs();
      const machine0 = machineCpuMs();
      const run = await engine.run(count, tag);
      const engineCpuMsPerOrder = (cpuMs() - cpu0) / count;
      const machine1 = machineCpuMs();
      const pg1 = await backendCpu(database.admin, database.name);
      return {
        ...run,
        engineCpuMsPerOrder,
        postgresCpuMsPerOrder: cpuBetween(pg0, pg1) / count,
        machineBusy: (machine1.busy - machine0.busy) / (machine1.total - machine0.total),
      };
    };

    if (WARMUP > 0) await engineRun(WARMUP, 'warm');
    const run = await engineRun(N, 'run');
    const result: BackendRun = {
      backend,
      database: database.name,
      queuePrefix: prefix,
      workerConcurrency: config.workerConcurrency,
      ...run,
      redisKeys: (await scanKeys(redis, prefix)).length,
    };
    if (backend === 'postgres') {
      const name = queueSchema(prefix);
      const [{ n }] = await check`select count(*)::int as n from pg_namespace where nspname = ${name}`;
      result.queueSchema = { name, present: n === 1 };
    }
    return result;
  } finally {
    await outside.close();
    await running?.stop().catch(() => undefined);
    await check.end({ timeout: 5 });
    await deleteKeys(redis, prefix).catch(() => undefined);
    redis.disconnect();
    await database.drop(); // BullMQ's schema (postgres) lives in it
  }
}

async function main() {
  const runs: Partial<Record<Backend, BackendRun>> = {};
  for (const backend of BACKENDS) runs[backend] = await measure(backend);
  const redis = runs.redis!;
  const pg = runs.postgres!;
  const ratio = pg.perSecond / redis.perSecond;
  const intakeRatio = pg.intakeMs / redis.intakeMs;

  console.log(
    `\nSurgeline queue backends: ${N} orders (after ${WARMUP} warm-up), POST → booked at a zero-latency carrier, ` +
      `role all, ${CONNECTIONS} connections, each backend on a fresh PostgreSQL database\n`,
  );
  printTable(
    [
      'QUEUE_BACKEND',
      'orders',
      'wall s',
      'orders/s',
      'POSTs s',
      'engine CPU ms/order',
      'PostgreSQL CPU ms/order',
      'machine busy',
    ],
    [
      ...[redis, pg].map((r) => [
        r.backend === 'redis' ? 'redis (default)' : 'postgres',
        r.orders,
        fmt(r.wallMs / 1000, 2),
        fmt(r.perSecond, 1),
        fmt(r.intakeMs / 1000, 2),
        fmt(r.engineCpuMsPerOrder, 1),
        fmt(r.postgresCpuMsPerOrder, 1),
        `${fmt(r.machineBusy * 100, 0)} %`,
      ]),
      [
        'postgres ÷ redis',
        '',
        fmt(pg.wallMs / redis.wallMs, 2),
        fmt(ratio, 2),
        fmt(intakeRatio, 2),
        fmt(pg.engineCpuMsPerOrder / redis.engineCpuMsPerOrder, 2),
        fmt(pg.postgresCpuMsPerOrder / redis.postgresCpuMsPerOrder, 2),
        '',
      ],
    ],
  );
  console.log(`\npostgres ÷ redis orders/s: ${fmt(ratio, 3)}`);
  if (pg.redisKeys > 0) console.log(`note: postgres mode left ${pg.redisKeys} Redis keys under its prefix`);
  if (pg.queueSchema && !pg.queueSchema.present)
    console.log(`note: BullMQ's schema ${pg.queueSchema.name} was not found in ${pg.database}`);
  writeResult('queue-backends.json', {
    at: new Date().toISOString(),
    orders: N,
    warmup: WARMUP,
    connections: CONNECTIONS,
    redis,
    postgres: pg,
    postgresVsRedis: ratio,
    postgresVsRedisPosts: intakeRatio,
  });
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).stack}`);
  process.exit(1);
});
