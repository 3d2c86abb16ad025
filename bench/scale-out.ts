/**
 * Scale-out (`npm run bench`, or `npx tsx bench/scale-out.ts`): orders/s POST → booked with the
 * engine run as separate OS processes — `node --import tsx src/main.ts api` (what `npm run
 * start:api` runs) ×1 or ×2 and `node --import tsx src/main.ts worker` (`npm run start:worker`,
 * every queue) ×1, ×2 or ×4 — against one Redis and one PostgreSQL server, and the CPU each
 * component spent per order.
 *
 * Each configuration ("<apis>x<workers>", BENCH_SCALE_CONFIGS, default 1x1,1x2,1x4,2x1,2x2,2x4) gets
 * a fresh database `bench_scale_<apis>x<workers>_<pid>` (migrated here before any process starts,
 * as `npm run db:migrate` does; the processes run with MIGRATE_ON_START=0), a fresh QUEUE_PREFIX,
 * and a fresh child process (bench/lib/outside.ts) with a zero-latency carrier simulator (no
 * progress events) and the shop. Every process has its own PORT (a worker serves /healthz,
 * /readyz and /metrics on it). The world is seedBenchWorld's: one carrier for every region, one
 * shop at 1,000,000 requests a minute, a warehouse with a million of each SKU. Default engine
 * settings (WORKER_CONCURRENCY 8, notification rate limits on); the environment passes through.
 *
 * The shop posts BENCH_SCALE_WARMUP (100) orders, unmeasured, and waits until they are booked;
 * then BENCH_SCALE_ORDERS (1000), order i to API process i mod apis, over BENCH_SCALE_CONNECTIONS
 * (50) keep-alive connections. The window runs from the first POST until every order is booked
 * (status dispatched or later, polled every 50 ms from the orders table). In it:
 *   - CPU (utime + stime from /proc/<pid>/stat, 10 ms ticks) of each API and worker process (node
 *     spawned directly, so the pid is node's), of the database's PostgreSQL backends (the bench's
 *     own polling connection left out), of the redis-server process (pid from INFO server; shared
 *     with every other client of that Redis), of the outside child, and the machine's busy CPU
 *     from /proc/stat (what is left is other users' load);
 *   - pg_stat_database deltas (xact_commit, tup_*) of the database and INFO's
 *     total_commands_processed (server-wide) for commits and Redis commands per order.
 * Reported per configuration: orders/s, the POST phase's requests/s, speed-up over 1x1, CPU ms per
 * order per component, each process's share of a core; and the orders/s the 1x1 per-order CPU
 * predicts for each configuration on the machine's cores. Processes are stopped with SIGTERM (each
 * exit code is reported), keys under the prefix deleted, the database dropped.
 * BENCH_SCALE_TIMEOUT_MS (300000) bounds each configuration (warm-up and window): past it the
 * configuration reports what was booked, the others still run, and the bench exits 1.
 * Env also BENCH_POSTGRES_URL, REDIS_URL, LOG_LEVEL (info). Writes bench/results/scale-out.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { surgeOrders } from '../src/demo/surge.js';
import {
  backendCpu,
  commandStats,
  countedDatabase,
  cpuBetween,
  cpuMs,
  createDatabase,
  deleteKeys,
  diff,
  fmt,
  freePort,
  httpAdminCaller,
  machineCpuMs,
  pgStats,
  printTable,
  procCpuMs,
  redisClient,
  redisServerPid,
  redisServerStats,
  seedBenchWorld,
  sleep,
  SqlCounter,
  stopChild,
  waitReady,
  writeResult,
} from './lib/common.js';
import { Outside } from './lib/outside-client.js';

const env = process.env;
const N = Number(env.BENCH_SCALE_ORDERS ?? 1000);
const WARMUP = Number(env.BENCH_SCALE_WARMUP ?? 100);
const CONNECTIONS = Number(env.BENCH_SCALE_CONNECTIONS ?? 50);
const TIMEOUT_MS = Number(env.BENCH_SCALE_TIMEOUT_MS ?? 600_000);
const IDLE_MS = Number(env.BENCH_SCALE_IDLE_MS ?? 5000);
const CONFIGS = (env.BENCH_SCALE_CONFIGS ?? '1x1,1x2,1x4,2x1,2x2,2x4')
  .split(',')
  .map((c) => c.trim())
  .filter(Boolean)
  .map((c) => {
    const m = c.match(/^(\d+)x(\d+)$/);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
      throw new Error(`BENCH_SCALE_CONFIGS: "${c}" is not <apis>x<workers>`);
    return { apis: Number(m[1]), workers: Number(m[2]) };
  });
const RUN = randomBytes(4).toString('hex');
const ADMIN = 'bench-admin-token';
const SECRET = 'bench-secret-1';
const SKUS = ['A', 'B', 'C', 'D', 'E', 'F'];
const REGION = 'bench-region';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Engine {
  role: 'api' | 'worker';
  name: string;
  url: string;
  child: ChildProcess;
  errorLines: number;
}

/** One engine process as `npm run start:<role>` runs it, with node's own pid; error-level log lines are echoed (a few) and counted. */
async function spawnEngine(
  role: 'api' | 'worker',
  name: string,
  extraEnv: Record<string, string>,
): Promise<Engine> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', role], {
    cwd: ROOT,
    env: {
      ...env,
      ...extraEnv,
      ADMIN_TOKEN: ADMIN,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: env.LOG_LEVEL ?? 'info',
      MIGRATE_ON_START: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const engine: Engine = { role, name, url: `http://127.0.0.1:${port}`, child, errorLines: 0 };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const level = Number(line.match(/"level":(\d+)/)?.[1] ?? 0);
    if (level >= 50 && ++engine.errorLines <= 3) console.error(`  [${name}] ${line.slice(0, 400)}`);
  });
  return engine;
}

interface Cpu {
  /** Per engine process, by name. */
  processes: Record<string, number>;
  api: number;
  workers: number;
  postgres: number;
  redis: number;
  outside: number;
  bench: number;
  /** Every component above. */
  measured: number;
  /** The whole machine's busy CPU (every core). */
  machine: number;
  /** machine − measured: other users' load (and the kernel's work for no process of ours). */
  other: number;
}

interface ConfigResult {
  config: string;
  apis: number;
  workers: number;
  orders: number;
  booked: number;
  timedOut: boolean;
  error?: string;
  wallMs: number;
  ordersPerSecond: number;
  postMs: number;
  postPerSecond: number;
  postStatuses: Record<string, number>;
  speedUp?: number;
  cpuMs: Cpu;
  cpuMsPerOrder: Cpu;
  /** CPU ms per second of each process (and of the database's backends) idle, before the warm-up: timers, BullMQ upkeep, reconciler. */
  idleMsPerSecond: {
    processes: Record<string, number>;
    api: number;
    workers: number;
    postgres: number;
    /** The redis-server, with every other client's traffic at that moment. */ redis: number;
  };
  /** CPU ms per order once the idle rate over the window is taken off. */
  marginalMsPerOrder: { api: number; workers: number; postgres: number; redis: number };
  /** Share of one core over the window, per process and component. */
  cores: Record<string, number>;
  postgresPerOrder: Record<string, number>;
  redisCommandsPerOrder: number;
  redisServerCallsPerOrder: number;
  redisClients: number;
  machineCores: number;
  loadAverage: number[];
  exits: Record<string, { code: number | null; killed: boolean }>;
  errorLogLines: number;
}

async function runConfig(apis: number, workers: number): Promise<ConfigResult> {
  const tag = `${apis}x${workers}`;
  const deadline = performance.now() + TIMEOUT_MS;
  const prefix = `surgeline-bench-scale-${RUN}-${tag}`;
  const database = await createDatabase(`scale_${tag}`);
  const redis = redisClient();
  const outside = new Outside();
  const engines: Engine[] = [];
  const check = postgres(database.url, { max: 1, onnotice: () => {} });
  const result: ConfigResult = {
    config: tag,
    apis,
    workers,
    orders: N,
    booked: 0,
    timedOut: false,
    wallMs: NaN,
    ordersPerSecond: NaN,
    postMs: NaN,
    postPerSecond: NaN,
    postStatuses: {},
    cpuMs: emptyCpu(),
    cpuMsPerOrder: emptyCpu(),
    idleMsPerSecond: { processes: {}, api: NaN, workers: NaN, postgres: NaN, redis: NaN },
    marginalMsPerOrder: { api: NaN, workers: NaN, postgres: NaN, redis: NaN },
    cores: {},
    postgresPerOrder: {},
    redisCommandsPerOrder: NaN,
    redisServerCallsPerOrder: NaN,
    redisClients: NaN,
    machineCores: machineCpuMs().cores,
    loadAverage: [],
    exits: {},
    errorLogLines: 0,
  };
  try {
    // Migrated once, before any process starts (npm run db:migrate does the same).
    const migrator = countedDatabase(database.url, new SqlCounter());
    await migrator.migrate();
    await migrator.close();
    const processEnv = { DATABASE_URL: database.url, QUEUE_PREFIX: prefix };
    for (let i = 0; i < apis; i++) engines.push(await spawnEngine('api', `api-${i + 1}`, processEnv));
    for (let i = 0; i < workers; i++)
      engines.push(await spawnEngine('worker', `worker-${i + 1}`, processEnv));
    await Promise.all(engines.map((e) => waitReady(e.url, e.child, e.name)));
    const apiUrls = engines.filter((e) => e.role === 'api').map((e) => e.url);
    const carrier = await outside.call<{ url: string }>('carrier', {
      carrierId: 'bench',
      webhookSecret: SECRET,
      eventsBaseUrl: apiUrls[0],
      progress: false,
    });
    const apiKey = await seedBenchWorld(httpAdminCaller(apiUrls[0], ADMIN), {
      carrierId: 'bench',
      carrierUrl: carrier.url,
      webhookSecret: SECRET,
      region: REGION,
      skus: SKUS,
    });
    const [{ pid: checkPid }] = await check`select pg_backend_pid() as pid`;
    const redisPid = await redisServerPid(redis);
    const booked = async () =>
      (
        await check`select count(*)::int as n from orders where status in ('dispatched', 'in_transit', 'delivered')`
      )[0].n as number;

    /** Posts `count` orders round-robin over the APIs and waits until they are booked; answers when the POSTs and the bookings were done. */
    const batch = async (count: number, name: string) => {
      const before = await booked();
      const bodies = surgeOrders(count, SKUS, [REGION], name.length + count);
      const start = performance.now();
      const posted = outside
        .call<{ wallMs: number; statuses: Record<string, number>; samples: object; errors: number }>('post', {
          urls: apiUrls,
          apiKey,
          bodies,
          keyPrefix: `${RUN}-${tag}-${name}`,
          connections: CONNECTIONS,
        })
        .then((r) => ({ ...r, doneAt: performance.now() }));
      let failed: Error | undefined;
      posted.then(
        (r) => {
          if ((r.statuses['202'] ?? 0) !== count)
            failed = new Error(
              `${name}: intake answered ${JSON.stringify(r.statuses)} (${r.errors} errors): ${JSON.stringify(r.samples)}`,
            );
        },
        (error: Error) => (failed = error),
      );
      let n = 0;
      for (;;) {
        n = (await booked()) - before;
        if (n >= count) break;
        if (failed) throw failed;
        if (performance.now() > deadline)
          return { start, end: performance.now(), booked: n, timedOut: true, posted };
        await sleep(50);
      }
      const end = performance.now();
      const r = await posted;
      if (failed) throw failed;
      return { start, end, booked: n, timedOut: false, posted: Promise.resolve(r), post: r };
    };

    // What each process costs doing nothing (BENCH_SCALE_IDLE_MS), before any order.
    const enginesCpu = () => Object.fromEntries(engines.map((e) => [e.name, procCpuMs(e.child.pid!)]));
    const withoutCheck = (m: Map<number, number>) => (m.delete(Number(checkPid)), m);
    if (IDLE_MS > 0) {
      await sleep(1000);
      const i0 = {
        engines: enginesCpu(),
        postgres: withoutCheck(await backendCpu(database.admin, database.name)),
        redis: procCpuMs(redisPid),
      };
      const t0 = performance.now();
      await sleep(IDLE_MS);
      const i1 = {
        engines: enginesCpu(),
        postgres: withoutCheck(await backendCpu(database.admin, database.name)),
        redis: procCpuMs(redisPid),
      };
      const seconds = (performance.now() - t0) / 1000;
      const idle = result.idleMsPerSecond;
      for (const e of engines) idle.processes[e.name] = (i1.engines[e.name] - i0.engines[e.name]) / seconds;
      const idleOf = (role: Engine['role']) =>
        engines.filter((e) => e.role === role).reduce((sum, e) => sum + idle.processes[e.name], 0);
      idle.api = idleOf('api');
      idle.workers = idleOf('worker');
      idle.postgres = cpuBetween(i0.postgres, i1.postgres) / seconds;
      idle.redis = (i1.redis - i0.redis) / seconds;
    }

    if (WARMUP > 0) {
      const warm = await batch(WARMUP, 'warm');
      if (warm.timedOut) {
        result.timedOut = true;
        result.error = `warm-up: ${warm.booked} of ${WARMUP} booked after ${TIMEOUT_MS} ms`;
        return result;
      }
    }
    await sleep(1500); // the warm-up's pg_stat_database counts flushed (backends flush about once a second)

    const snapshot = async () => ({
      engines: enginesCpu(),
      postgres: withoutCheck(await backendCpu(database.admin, database.name)),
      redis: procCpuMs(redisPid),
      outside: procCpuMs(outside.pid),
      bench: cpuMs(),
      machine: machineCpuMs().busy,
      pg: await pgStats(database.admin, database.name),
      redisStats: await redisServerStats(redis),
      redisCalls: await commandStats(redis),
    });
    const s0 = await snapshot();
    const run = await batch(N, 'run');
    const s1 = await snapshot();

    const wallMs = run.end - run.start;
    result.booked = run.booked;
    result.timedOut = run.timedOut;
    result.wallMs = wallMs;
    result.ordersPerSecond = (run.booked * 1000) / wallMs;
    if (run.timedOut) result.error = `${run.booked} of ${N} booked after ${TIMEOUT_MS} ms`;
    if (run.post) {
      result.postMs = run.post.doneAt - run.start;
      result.postPerSecond = (N * 1000) / result.postMs;
      result.postStatuses = run.post.statuses;
    }
    const processes = Object.fromEntries(
      engines.map((e) => [e.name, s1.engines[e.name] - s0.engines[e.name]]),
    );
    const sumOf = (role: Engine['role']) =>
      engines.filter((e) => e.role === role).reduce((sum, e) => sum + processes[e.name], 0);
    const cpu: Cpu = {
      processes,
      api: sumOf('api'),
      workers: sumOf('worker'),
      postgres: cpuBetween(s0.postgres, s1.postgres),
      redis: s1.redis - s0.redis,
      outside: s1.outside - s0.outside,
      bench: s1.bench - s0.bench,
      measured: 0,
      machine: s1.machine - s0.machine,
      other: 0,
    };
    cpu.measured = cpu.api + cpu.workers + cpu.postgres + cpu.redis + cpu.outside + cpu.bench;
    cpu.other = cpu.machine - cpu.measured;
    result.cpuMs = cpu;
    const per = Math.max(1, run.booked);
    result.cpuMsPerOrder = scaleCpu(cpu, 1 / per);
    const idle = result.idleMsPerSecond;
    const marginal = (ms: number, idlePerSecond: number) =>
      (ms - (Number.isFinite(idlePerSecond) ? idlePerSecond : 0) * (wallMs / 1000)) / per;
    result.marginalMsPerOrder = {
      api: marginal(cpu.api, idle.api),
      workers: marginal(cpu.workers, idle.workers),
      postgres: marginal(cpu.postgres, idle.postgres),
      redis: marginal(cpu.redis, idle.redis),
    };
    result.cores = Object.fromEntries(
      [...Object.entries(processes), ...Object.entries(cpu).filter(([k]) => k !== 'processes')].map(
        ([k, v]) => [k, (v as number) / wallMs],
      ),
    );
    const pg = diff(s0.pg, s1.pg);
    result.postgresPerOrder = Object.fromEntries(Object.entries(pg).map(([k, v]) => [k, v / per]));
    result.redisCommandsPerOrder = (s1.redisStats.commands - s0.redisStats.commands) / per;
    const calls = diff(s0.redisCalls, s1.redisCalls);
    delete calls.info;
    result.redisServerCallsPerOrder = Object.values(calls).reduce((a, b) => a + Math.max(0, b), 0) / per;
    result.redisClients = s1.redisStats.clients;
    result.loadAverage = loadavg().map((x) => Number(x.toFixed(2)));
    return result;
  } catch (error) {
    result.error = (error as Error).message;
    return result;
  } finally {
    const exits = await Promise.all(engines.map((e) => stopChild(e.child)));
    for (const [i, e] of engines.entries()) result.exits[e.name] = exits[i];
    result.errorLogLines = engines.reduce((sum, e) => sum + e.errorLines, 0);
    await outside.close();
    await check.end({ timeout: 5 });
    await deleteKeys(redis, prefix).catch(() => undefined);
    redis.disconnect();
    await database.drop();
  }
}

function emptyCpu(): Cpu {
  return {
    processes: {},
    api: NaN,
    workers: NaN,
    postgres: NaN,
    redis: NaN,
    outside: NaN,
    bench: NaN,
    measured: NaN,
    machine: NaN,
    other: NaN,
  };
}

function scaleCpu(cpu: Cpu, k: number): Cpu {
  const out = {
    ...cpu,
    processes: Object.fromEntries(Object.entries(cpu.processes).map(([n, v]) => [n, v * k])),
  };
  for (const key of [
    'api',
    'workers',
    'postgres',
    'redis',
    'outside',
    'bench',
    'measured',
    'machine',
    'other',
  ] as const)
    out[key] = cpu[key] * k;
  return out;
}

/**
 * Orders/s a configuration should reach if each order costs what it cost in `base`: `base`'s
 * marginal CPU per order for the API and worker work (split evenly over the processes) and its
 * CPU per order for PostgreSQL, Redis and the outside child, plus each process's own idle rate
 * (measured in `r`). Every process is bounded by one core; everything together by the cores —
 * those the others' load measured in `r`'s window left (`free`), and all of them (`quiet`, a
 * machine to itself).
 */
function predict(base: ConfigResult, r: ConfigResult) {
  const m = base.marginalMsPerOrder;
  const p = base.cpuMsPerOrder;
  const idle = r.idleMsPerSecond;
  const perProcessIdle = (role: 'api' | 'worker') =>
    (role === 'api' ? idle.api / r.apis : idle.workers / r.workers) || 0;
  const apiBound = (r.apis * (1000 - perProcessIdle('api'))) / m.api;
  const workerBound = (r.workers * (1000 - perProcessIdle('worker'))) / m.workers;
  const redis = Number.isFinite(m.redis) ? Math.max(0, m.redis) : p.redis; // the shared server's idle rate (others' traffic) taken off
  const perOrder = m.api + m.workers + m.postgres + redis + p.outside + p.bench;
  const fixed = (idle.api || 0) + (idle.workers || 0) + (idle.postgres || 0); // ms/s
  const freeCores = r.machineCores - (Number.isFinite(r.cores.other) ? Math.max(0, r.cores.other) : 0);
  const freeBound = (freeCores * 1000 - fixed) / perOrder;
  const quietBound = (r.machineCores * 1000 - fixed) / perOrder;
  const predicted = Math.min(apiBound, workerBound, freeBound);
  const limit =
    predicted === apiBound ? 'api processes' : predicted === workerBound ? 'worker processes' : 'cores';
  const quiet = Math.min(apiBound, workerBound, quietBound);
  return {
    apiBound,
    workerBound,
    perOrderMs: perOrder,
    fixedMsPerSecond: fixed,
    freeCores,
    freeBound,
    quietBound,
    predicted,
    quiet,
    limit,
  };
}

async function main() {
  console.log(
    `scale-out: ${CONFIGS.map((c) => `${c.apis}x${c.workers}`).join(', ')} (apis x workers); ${N} orders after ${WARMUP} warm-up, ${CONNECTIONS} connections`,
  );
  const results: ConfigResult[] = [];
  for (const { apis, workers } of CONFIGS) {
    const t = performance.now();
    const r = await runConfig(apis, workers);
    results.push(r);
    console.log(
      `  ${r.config}: ${r.booked}/${N} booked, ${fmt(r.ordersPerSecond, 1)} orders/s` +
        `${r.error ? ` — ${r.error}` : ''} (${fmt((performance.now() - t) / 1000, 0)} s with set-up)`,
    );
  }
  const base = results.find((r) => r.config === '1x1' && !r.error);
  for (const r of results) if (base && !r.error) r.speedUp = r.ordersPerSecond / base.ordersPerSecond;
  const predictions = base
    ? Object.fromEntries(results.filter((r) => !r.error).map((r) => [r.config, predict(base, r)]))
    : {};

  const cores = results[0]?.machineCores ?? NaN;
  console.log(
    `\nSurgeline scale-out: ${N} orders POST → booked (zero-latency carrier), api × worker processes on one Redis and one PostgreSQL, ${cores} cores\n`,
  );
  printTable(
    [
      'apis×workers',
      'orders/s',
      'speed-up',
      'POST req/s',
      'api ms/order',
      'workers ms',
      'postgres ms',
      'redis ms',
      'outside ms',
      'ours ms',
      'busy cores',
      'others cores',
    ],
    results.map((r) => {
      const c = r.cpuMsPerOrder;
      return [
        `${r.apis}×${r.workers}${r.error ? ' (!)' : ''}`,
        fmt(r.ordersPerSecond, 1),
        r.speedUp === undefined ? '-' : fmt(r.speedUp, 2),
        fmt(r.postPerSecond, 0),
        fmt(c.api, 1),
        fmt(c.workers, 1),
        fmt(c.postgres, 1),
        fmt(c.redis, 1),
        fmt(c.outside, 1),
        fmt(c.measured, 1),
        fmt(r.cores.machine, 2),
        fmt(r.cores.other, 2),
      ];
    }),
  );
  console.log('\nshare of one core over the window, per process:');
  for (const r of results) {
    const procs = Object.keys(r.cpuMs.processes)
      .map((name) => `${name} ${fmt(r.cores[name] * 100, 0)}%`)
      .join(', ');
    console.log(
      `  ${r.config}: ${procs}; postgres ${fmt(r.cores.postgres * 100, 0)}%, redis ${fmt(r.cores.redis * 100, 0)}%, outside ${fmt(r.cores.outside * 100, 0)}%`,
    );
  }
  console.log(
    '\nidle (before the warm-up), CPU ms per second; marginal CPU ms per order (idle rate over the window taken off):',
  );
  for (const r of results) {
    const idle = Object.entries(r.idleMsPerSecond.processes)
      .map(([name, v]) => `${name} ${fmt(v, 1)}`)
      .join(', ');
    const m = r.marginalMsPerOrder;
    console.log(
      `  ${r.config}: idle ${idle}, postgres ${fmt(r.idleMsPerSecond.postgres, 1)}, redis ${fmt(r.idleMsPerSecond.redis, 1)}; marginal api ${fmt(m.api, 1)}, workers ${fmt(m.workers, 1)}, postgres ${fmt(m.postgres, 1)}, redis ${fmt(m.redis, 1)}`,
    );
  }
  console.log('\nper order: PostgreSQL commits, rows inserted / updated; Redis commands (server-wide):');
  for (const r of results)
    console.log(
      `  ${r.config}: ${fmt(r.postgresPerOrder.xact_commit, 1)} commits, ${fmt(r.postgresPerOrder.tup_inserted, 1)} / ${fmt(r.postgresPerOrder.tup_updated, 1)} rows, ` +
        `${fmt(r.redisCommandsPerOrder, 1)} Redis commands (${r.redisClients} clients connected)`,
    );
  if (base) {
    console.log(
      `\nmodel from 1x1: marginal CPU per order api ${fmt(base.marginalMsPerOrder.api, 1)} ms, workers ${fmt(base.marginalMsPerOrder.workers, 1)} ms, ` +
        `PostgreSQL ${fmt(base.marginalMsPerOrder.postgres, 1)} ms, Redis ${fmt(base.marginalMsPerOrder.redis, 1)} ms, outside + bench ${fmt(base.cpuMsPerOrder.outside + base.cpuMsPerOrder.bench, 1)} ms; ` +
        `plus each configuration's idle ms/s; each process ≤ 1 core; all ≤ the cores (free: less the others' load in that window; quiet: all ${cores})`,
    );
    printTable(
      [
        'apis×workers',
        'api bound',
        'worker bound',
        'idle ms/s',
        'free cores',
        'cores bound',
        'predicted',
        'measured',
        'measured ÷ predicted',
        'limit',
        'quiet 2-core',
      ],
      results
        .filter((r) => predictions[r.config])
        .map((r) => {
          const p = predictions[r.config];
          return [
            `${r.apis}×${r.workers}`,
            fmt(p.apiBound, 1),
            fmt(p.workerBound, 1),
            fmt(p.fixedMsPerSecond, 0),
            fmt(p.freeCores, 2),
            fmt(p.freeBound, 1),
            fmt(p.predicted, 1),
            fmt(r.ordersPerSecond, 1),
            fmt(r.ordersPerSecond / p.predicted, 2),
            p.limit,
            fmt(p.quiet, 1),
          ];
        }),
    );
  }
  const unclean = results.flatMap((r) =>
    Object.entries(r.exits)
      .filter(([, x]) => x.code !== 0 || x.killed)
      .map(([name, x]) => `${r.config} ${name}: ${x.killed ? 'killed after SIGTERM' : `exit ${x.code}`}`),
  );
  if (unclean.length > 0) console.log(`\nnot stopped cleanly by SIGTERM: ${unclean.join('; ')}`);
  const errorLines = results.reduce((sum, r) => sum + r.errorLogLines, 0);
  if (errorLines > 0) console.log(`error-level log lines from the engine processes: ${errorLines}`);
  const failed = results.filter((r) => r.error);
  writeResult('scale-out.json', {
    at: new Date().toISOString(),
    orders: N,
    warmup: WARMUP,
    connections: CONNECTIONS,
    machineCores: cores,
    configurations: results,
    model: base ? { base: '1x1', predictions } : null,
    failed: failed.map((r) => r.config),
  });
  if (failed.length > 0) {
    console.error(`\nnot finished: ${failed.map((r) => `${r.config} (${r.error})`).join('; ')}`);
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).stack}`);
  process.exit(1);
});
