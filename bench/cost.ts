/**
 * The cost of one order (`npm run bench`, or `npx tsx bench/cost.ts`): SQL statements and
 * transactions, Redis commands and round trips, BullMQ jobs added per queue, and CPU of the
 * engine's process (and of its PostgreSQL backends), per order, stage by stage.
 *
 * The engine runs in this process (`startProcess` from src/runtime.ts) on a fresh PostgreSQL
 * database; the outside world — a zero-latency carrier simulator and a shop posting orders over
 * keep-alive HTTP — runs in a child process (bench/lib/outside.ts), so its CPU is not counted.
 *
 * Staged run: one process per stage, one after the other, over the same BENCH_COST_ORDERS (500):
 *   intake       role api, the shop POSTs every order (20 connections)
 *   allocation   role worker, WORKER_QUEUES=allocation, until its queues are empty
 *   dispatch     role worker, WORKER_QUEUES=dispatch (booking calls included), until empty
 *   carrier      role api, the carrier reports in_transit then delivered for every parcel
 *   events
 *   notification role worker, WORKER_QUEUES=notification (SMS and email recorded, not sent;
 *                no channel rate limit), until every message is done
 * Each stage's queues are paused (through the producer's queuesOf) while its process starts, and
 * resumed once the counters are read, so start-up is not counted. Then an all-in-one run (role all,
 * carrier progress 20/50 ms) of the same number of orders, first POST to last message, as a check
 * on the sum of the stages, and an idle one (role all, no orders, BENCH_COST_IDLE_MS = 10 s) for what
 * a process costs by itself per second (reconciler, stock watch, carrier refresh, BullMQ upkeep).
 *
 * What is counted, in the measured window (work resumed → queues drained):
 *   - statements: every statement the engine's postgres.js client executes (its `debug` hook),
 *     BEGIN/COMMIT included; transactions = explicit BEGINs + statements outside any (autocommit);
 *     about one network round trip each;
 *   - Redis: every command any ioredis client of the engine sends (BullMQ's too; a Lua script is
 *     one command, named by its BullMQ script), and round trips (a pipeline is one);
 *   - server-side Redis calls (INFO commandstats delta: counts the calls inside Lua scripts too —
 *     server-wide, so another client's traffic on a shared Redis shows up in it);
 *   - jobs added per queue: `<prefix>:<queue>:id` counters (an add deduplicated by job id counts);
 *   - engine CPU ms: process.cpuUsage() delta (the bench's own polling is a few ms);
 *   - PostgreSQL CPU ms: utime+stime of the bench database's backends (/proc, 10 ms ticks);
 *   - pg_stat_database deltas (xact_commit, tup_*) over each stage's process life (start and stop
 *     included: they are only flushed reliably when its connections close).
 * Env: BENCH_COST_ORDERS (500), BENCH_COST_IDLE_MS (10000), BENCH_COST_CONNECTIONS (20),
 * BENCH_POSTGRES_URL, REDIS_URL. Prints a table; writes bench/results/cost.json.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { surgeOrders } from '../src/demo/surge.js';
import { redisQueueBackend } from '../src/queues/backend.js';
import { Queues } from '../src/queues/producer.js';
import { redisCoordination } from '../src/queues/redis-coordination.js';
import type { QueueName } from '../src/queues/topology.js';
import { startProcess, type Role, type RunningProcess } from '../src/runtime.js';
import {
  backendCpu,
  commandStats,
  cpuBetween,
  countedDatabase,
  cpuMs,
  createDatabase,
  deleteKeys,
  diff,
  fmt,
  jobAdds,
  pgStats,
  printTable,
  RedisCounter,
  redisClient,
  redisDelta,
  sleep,
  SqlCounter,
  sqlDelta,
  writeResult,
  adminCaller,
  seedBenchWorld,
  freePort,
} from './lib/common.js';
import { Outside } from './lib/outside-client.js';

const env = process.env;
const N = Number(env.BENCH_COST_ORDERS ?? 500);
const IDLE_MS = Number(env.BENCH_COST_IDLE_MS ?? 10_000);
const CONNECTIONS = Number(env.BENCH_COST_CONNECTIONS ?? 20);
const TIMEOUT_MS = Number(env.BENCH_COST_TIMEOUT_MS ?? 300_000);
const RUN = randomBytes(4).toString('hex');
const PREFIX = `surgeline-bench-cost-${RUN}`;
const ADMIN = 'bench-admin-token';
const CARRIER = 'bench';
const SECRET = 'bench-secret-1';
const SKUS = ['A', 'B', 'C', 'D', 'E', 'F'];
const REGION = 'bench-region';

const redisCounter = new RedisCounter();
redisCounter.install();

async function redisServerCpuMs(redis: ReturnType<typeof redisClient>) {
  const text = await redis.info('cpu');
  const get = (k: string) => Number(text.match(new RegExp(`${k}:([\\d.]+)`))?.[1] ?? 0);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000;
}

interface StageResult {
  stage: string;
  role: Role;
  workerQueues?: string;
  wallMs: number;
  statements: number;
  transactions: number;
  statementsByKind: Record<string, number>;
  redisCommands: number;
  redisRoundTrips: number;
  redisByName: Record<string, number>;
  redisServerCalls: number;
  redisServerByCommand: Record<string, number>;
  jobsAdded: Record<string, number>;
  engineCpuMs: number;
  postgresCpuMs: number;
  redisServerCpuMs: number;
  pgStat: Record<string, number>;
  note?: string;
}

async function main() {
  const database = await createDatabase('cost');
  const bench = redisCounter.exclude(redisClient());
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
    MIGRATE_ON_START: '0',
    SMS_RATE_PER_SECOND: '0',
    EMAIL_RATE_PER_SECOND: '0',
    SHED_STANDARD_AT: '1000000',
  };
  const config = (extra: Record<string, string> = {}) => loadConfig({ ...baseEnv, ...extra });
  // The bench's own producer handle (pause/resume, queue names), not counted.
  const queues = new Queues(redisQueueBackend(bench, PREFIX), redisCoordination(bench, PREFIX), config());
  const results: StageResult[] = [];
  try {
    // Migrate and set up in a process of its own, not measured.
    const setupDb = countedDatabase(database.url, new SqlCounter());
    await setupDb.migrate();
    const setup = await startProcess('api', config(), { database: setupDb });
    await setup.ready;
    const carrier = await outside.call<{ url: string }>('carrier', {
      carrierId: CARRIER,
      webhookSecret: SECRET,
      eventsBaseUrl: api,
      progress: false,
    });
    const call = adminCaller(setup.app, ADMIN);
    const apiKey = await seedBenchWorld(call, {
      carrierId: CARRIER,
      carrierUrl: carrier.url,
      webhookSecret: SECRET,
      region: REGION,
      skus: SKUS,
    });
    await setup.stop();

    // ------------------------------------------------------------ one measured process
    const measure = async (
      stage: string,
      role: Role,
      workerQueues: QueueName[] | undefined,
      work: (running: RunningProcess) => Promise<void>,
      extraEnv: Record<string, string> = {},
    ): Promise<StageResult> => {
      const stageQueues = workerQueues
        ? workerQueues.flatMap((q) =>
            q === 'dispatch'
              ? [...queues.queuesOf(q), ...queues.carrierQueue(CARRIER).all]
              : queues.queuesOf(q),
          )
        : [];
      await Promise.all(stageQueues.map((q) => q.pause()));
      await sleep(1500); // earlier stages' backends gone and flushed
      const pg0 = await pgStats(database.admin, database.name);
      const sqlTap = new SqlCounter();
      const running = await startProcess(
        role,
        config({ ...(workerQueues ? { WORKER_QUEUES: workerQueues.join(',') } : {}), ...extraEnv }),
        { database: countedDatabase(database.url, sqlTap) },
      );
      await running.ready;
      while (!running.ctx.coord.connected()) await sleep(20);
      await sleep(500); // workers connected and blocked on their (paused) queues
      const sql0 = sqlTap.snapshot();
      const redis0 = redisCounter.snapshot();
      const server0 = await commandStats(bench);
      const jobs0 = await jobAdds(bench, PREFIX);
      const pgCpu0 = await backendCpu(database.admin, database.name);
      const redisCpu0 = await redisServerCpuMs(bench);
      const cpu0 = cpuMs();
      const t0 = performance.now();
      await Promise.all(stageQueues.map((q) => q.resume()));
      await work(running);
      const wallMs = performance.now() - t0;
      const cpu1 = cpuMs();
      const redis1 = redisCounter.snapshot();
      const sql1 = sqlTap.snapshot();
      const pgCpu1 = await backendCpu(database.admin, database.name);
      const redisCpu1 = await redisServerCpuMs(bench);
      const server1 = await commandStats(bench);
      const jobs1 = await jobAdds(bench, PREFIX);
      await running.stop();
      await sleep(1500);
      const pg1 = await pgStats(database.admin, database.name);
      const s = sqlDelta(sql0, sql1);
      const r = redisDelta(redis0, redis1);
      const serverDelta = diff(server0, server1);
      // The bench's own INFO/SCAN/GET/LLEN/ZCARD calls are in the server-side figure; take out what can be told apart.
      delete serverDelta.info;
      const serverCalls = Object.values(serverDelta).reduce((a, b) => a + Math.max(0, b), 0);
      return {
        stage,
        role,
        workerQueues: workerQueues?.join(','),
        wallMs,
        statements: s.total,
        transactions: s.transactions,
        statementsByKind: s.byKind,
        redisCommands: r.commands,
        redisRoundTrips: r.roundTrips,
        redisByName: r.byName,
        redisServerCalls: serverCalls,
        redisServerByCommand: Object.fromEntries(Object.entries(serverDelta).filter(([, n]) => n > 0)),
        jobsAdded: Object.fromEntries(
          Object.entries(jobs1)
            .map(([q, n]) => [q, n - (jobs0[q] ?? 0)] as const)
            .filter(([, n]) => n > 0),
        ),
        engineCpuMs: cpu1 - cpu0,
        postgresCpuMs: cpuBetween(pgCpu0, pgCpu1),
        redisServerCpuMs: redisCpu1 - redisCpu0,
        pgStat: diff(pg0, pg1),
      };
    };

    const deadline = () => Date.now() + TIMEOUT_MS;
    /** Until the given queues have nothing waiting, delayed or active, twice in a row. */
    const drained = async (names: string[], until = deadline()) => {
      let quiet = 0;
      while (quiet < 2) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${names.join(', ')} to drain`);
        await sleep(100);
        let n = 0;
        for (const name of names) n += await pendingOf(bench, PREFIX, name);
        quiet = n === 0 ? quiet + 1 : 0;
      }
    };
    const namesOf = (stage: QueueName) =>
      stage === 'dispatch'
        ? [
            ...queues.queuesOf(stage).map((q) => q.name),
            ...queues.carrierQueue(CARRIER).all.map((q) => q.name),
          ]
        : queues.queuesOf(stage).map((q) => q.name);

    const post = async (keyPrefix: string) => {
      const bodies = surgeOrders(N, SKUS, [REGION], keyPrefix.length);
      const answer = await outside.call<{
        statuses: Record<string, number>;
        samples: Record<string, string>;
      }>('post', {
        url: api,
        apiKey,
        bodies,
        keyPrefix,
        connections: CONNECTIONS,
      });
      if ((answer.statuses['202'] ?? 0) !== N)
        throw new Error(
          `intake answered ${JSON.stringify(answer.statuses)}: ${JSON.stringify(answer.samples)}`,
        );
    };

    console.log(`cost: ${N} orders, database ${database.name}, prefix ${PREFIX}`);
    results.push(await measure('intake', 'api', undefined, () => post(`staged-${RUN}`)));
    console.log('  intake done');
    results.push(await measure('allocation', 'worker', ['allocation'], () => drained(namesOf('allocation'))));
    console.log('  allocation done');
    results.push(await measure('dispatch', 'worker', ['dispatch'], () => drained(namesOf('dispatch'))));
    console.log('  dispatch done');
    results.push(
      await measure('carrier events', 'api', undefined, async () => {
        const r = await outside.call<{ sent: number; failed: number }>('events', {
          statuses: ['in_transit', 'delivered'],
          connections: CONNECTIONS,
        });
        if (r.failed > 0) throw new Error(`${r.failed} carrier events not taken`);
      }),
    );
    console.log('  carrier events done');
    results.push(
      await measure('notification', 'worker', ['notification'], () => drained(namesOf('notification'))),
    );
    console.log('  notification done');

    // All in one process, the way `npm start` runs: first POST to the last message sent.
    const allNames = () =>
      ['allocation', 'dispatch', 'notification', 'cancellation'].flatMap((q) => namesOf(q as QueueName));
    const all = await measure('all in one', 'all', undefined, async () => {
      await outside.call('set', { progress: { inTransitAfterMs: 20, deliveredAfterMs: 50 } });
      await post(`all-${RUN}`);
      const until = deadline();
      for (;;) {
        await drained(allNames(), until);
        const stats = await outside.call<{ bookings: number; eventsSent: number }>('stats');
        if (stats.bookings >= 2 * N && stats.eventsSent >= 2 * N) {
          await drained(allNames(), until);
          return;
        }
        if (Date.now() > until) throw new Error('timed out waiting for the carrier events');
      }
    });
    results.push(all);
    console.log('  all in one done');
    results.push(
      await measure('idle (per second)', 'all', undefined, async () => {
        await sleep(IDLE_MS);
      }),
    );

    const check = postgres(database.url, { max: 1, onnotice: () => {} });
    const statusRows = await check`select status, count(*)::int as n from orders group by status`;
    await check.end();
    const statuses = Object.fromEntries(statusRows.map((r) => [r.status as string, r.n as number]));
    const clients = Number((await bench.info('clients')).match(/connected_clients:(\d+)/)?.[1] ?? 0) - 1;
    report(results, statuses, clients);
  } finally {
    await outside.close();
    await queues.close().catch(() => undefined);
    await deleteKeys(bench, PREFIX).catch(() => undefined);
    bench.disconnect();
    await database.drop();
  }
}

async function pendingOf(redis: ReturnType<typeof redisClient>, prefix: string, queue: string) {
  const base = `${prefix}:${queue}`;
  const [wait, paused, active, prioritized, delayed] = await Promise.all([
    redis.llen(`${base}:wait`),
    redis.llen(`${base}:paused`),
    redis.llen(`${base}:active`),
    redis.zcard(`${base}:prioritized`),
    redis.zcard(`${base}:delayed`),
  ]);
  return wait + paused + active + prioritized + delayed;
}
const top = (counts: Record<string, number>, per: number, k = 8) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([name, n]) => `${name} ${fmt(n / per, 2)}`)
    .join(', ');

function perOrder(r: StageResult, per: number) {
  const jobs = Object.values(r.jobsAdded).reduce((a, b) => a + b, 0);
  return {
    statements: r.statements / per,
    transactions: r.transactions / per,
    redisCommands: r.redisCommands / per,
    redisRoundTrips: r.redisRoundTrips / per,
    redisServerCalls: r.redisServerCalls / per,
    jobsAdded: jobs / per,
    engineCpuMs: r.engineCpuMs / per,
    postgresCpuMs: r.postgresCpuMs / per,
    redisServerCpuMs: r.redisServerCpuMs / per,
    tupInserted: (r.pgStat.tup_inserted ?? 0) / per,
    tupUpdated: (r.pgStat.tup_updated ?? 0) / per,
    tupFetched: (r.pgStat.tup_fetched ?? 0) / per,
    xactCommit: (r.pgStat.xact_commit ?? 0) / per,
  };
}

function sumStages(stages: StageResult[]): StageResult {
  const add = (a: Record<string, number>, b: Record<string, number>) => {
    const out = { ...a };
    for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
    return out;
  };
  return stages.reduce(
    (acc, r) => ({
      ...acc,
      wallMs: acc.wallMs + r.wallMs,
      statements: acc.statements + r.statements,
      transactions: acc.transactions + r.transactions,
      statementsByKind: add(acc.statementsByKind, r.statementsByKind),
      redisCommands: acc.redisCommands + r.redisCommands,
      redisRoundTrips: acc.redisRoundTrips + r.redisRoundTrips,
      redisByName: add(acc.redisByName, r.redisByName),
      redisServerCalls: acc.redisServerCalls + r.redisServerCalls,
      redisServerByCommand: add(acc.redisServerByCommand, r.redisServerByCommand),
      jobsAdded: add(acc.jobsAdded, r.jobsAdded),
      engineCpuMs: acc.engineCpuMs + r.engineCpuMs,
      postgresCpuMs: acc.postgresCpuMs + r.postgresCpuMs,
      redisServerCpuMs: acc.redisServerCpuMs + r.redisServerCpuMs,
      pgStat: add(acc.pgStat, r.pgStat),
    }),
    {
      stage: 'sum of stages',
      role: 'all' as Role,
      wallMs: 0,
      statements: 0,
      transactions: 0,
      statementsByKind: {},
      redisCommands: 0,
      redisRoundTrips: 0,
      redisByName: {},
      redisServerCalls: 0,
      redisServerByCommand: {},
      jobsAdded: {},
      engineCpuMs: 0,
      postgresCpuMs: 0,
      redisServerCpuMs: 0,
      pgStat: {},
    } as StageResult,
  );
}

function report(results: StageResult[], statuses: Record<string, number>, otherRedisClients: number) {
  const stages = results.slice(0, 5);
  const all = results.find((r) => r.stage === 'all in one')!;
  const idle = results.find((r) => r.stage.startsWith('idle'))!;
  const sum = sumStages(stages);
  const rows = [...stages, sum, all].map((r) => ({ r, per: N, unit: 'order' }));
  rows.push({ r: idle, per: idle.wallMs / 1000, unit: 'second' });
  console.log(
    `\nSurgeline cost per order: ${N} orders, PostgreSQL ${results.length ? '' : ''}(fresh database), Redis ${env.REDIS_URL ?? '127.0.0.1:6379'}; per order (idle: per second)\n`,
  );
  printTable(
    [
      'stage',
      'wall s',
      'stmts',
      'tx',
      'redis cmds',
      'redis RTs',
      'srv calls',
      'jobs',
      'engine CPU ms',
      'pg CPU ms',
      'redis CPU ms',
      'tup ins',
      'tup upd',
    ],
    rows.map(({ r, per }) => {
      const p = perOrder(r, per);
      return [
        r.stage,
        fmt(r.wallMs / 1000, 1),
        fmt(p.statements, 1),
        fmt(p.transactions, 1),
        fmt(p.redisCommands, 1),
        fmt(p.redisRoundTrips, 1),
        fmt(p.redisServerCalls, 0),
        fmt(p.jobsAdded, 1),
        fmt(p.engineCpuMs, 2),
        fmt(p.postgresCpuMs, 2),
        fmt(p.redisServerCpuMs, 2),
        fmt(p.tupInserted, 1),
        fmt(p.tupUpdated, 1),
      ];
    }),
  );
  console.log('\nper order, by stage: statements | Redis commands (client side) | jobs added per queue');
  for (const r of [...stages, all]) {
    console.log(`\n${r.stage}`);
    console.log(`  sql    ${top(r.statementsByKind, N)}`);
    console.log(`  redis  ${top(r.redisByName, N)}`);
    console.log(`  jobs   ${top(r.jobsAdded, N, 12) || '-'}`);
  }
  console.log(
    `\nidle process (role all), per second: sql ${top(idle.statementsByKind, idle.wallMs / 1000, 5)}`,
  );
  console.log(`  redis ${top(idle.redisByName, idle.wallMs / 1000, 5)}`);
  const allPer = perOrder(all, N);
  const sizing = {
    ordersPerSecondPerEngineCore: 1000 / allPer.engineCpuMs,
    ordersPerSecondPerPostgresCore: 1000 / allPer.postgresCpuMs,
    engineCpuMsPerOrder: allPer.engineCpuMs,
    postgresCpuMsPerOrder: allPer.postgresCpuMs,
    sumOfStagesVsAllInOne: {
      engineCpu: sum.engineCpuMs / all.engineCpuMs,
      statements: sum.statements / all.statements,
      redisCommands: sum.redisCommands / all.redisCommands,
    },
  };
  console.log(
    `\nsizing (all in one): ${fmt(sizing.ordersPerSecondPerEngineCore, 0)} orders/s per engine core (CPU), ` +
      `${fmt(sizing.ordersPerSecondPerPostgresCore, 0)} per PostgreSQL core (backends' CPU); sum of stages / all in one: ` +
      `CPU ${fmt(sizing.sumOfStagesVsAllInOne.engineCpu, 2)}, statements ${fmt(sizing.sumOfStagesVsAllInOne.statements, 2)}, ` +
      `Redis commands ${fmt(sizing.sumOfStagesVsAllInOne.redisCommands, 2)}`,
  );
  const idleServer = idle.redisServerCalls / (idle.wallMs / 1000);
  const idleOurs = idle.redisCommands / (idle.wallMs / 1000);
  console.log(
    `server-side Redis (INFO commandstats, server-wide, Lua scripts' inner calls included): all in one ` +
      `${fmt(all.redisServerCalls / N, 0)} calls per order (${top(all.redisServerByCommand, N, 6)}); ` +
      `while idle ${fmt(idleServer, 0)} calls/s against our ${fmt(idleOurs, 1)} commands/s` +
      (idleServer > 5 * idleOurs + 50 ? ' — other clients dominate: read the client-side counts' : ''),
  );
  console.log(
    `orders by status at the end: ${JSON.stringify(statuses)}; other Redis clients connected: ${otherRedisClients}`,
  );
  writeResult('cost.json', {
    at: new Date().toISOString(),
    orders: N,
    connections: CONNECTIONS,
    idleMs: IDLE_MS,
    statusesAtEnd: statuses,
    otherRedisClientsConnected: otherRedisClients,
    perOrder: Object.fromEntries([...stages, sum, all].map((r) => [r.stage, perOrder(r, N)])),
    idlePerSecond: perOrder(idle, idle.wallMs / 1000),
    sizing,
    stages: results,
  });
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).stack}`);
  process.exit(1);
});
