/**
 * Intake throughput over HTTP (`npm run bench`, or `npx tsx bench/intake.ts`): valid
 * POST /v1/orders through the real engine API vs a baseline measured in the same run.
 *
 *   engine    `node --import tsx src/main.ts api` (what `npm run start:api` runs; BENCH_INTAKE_ROLE=all
 *             for `npm start`, workers included) on a fresh PostgreSQL database, LOG_LEVEL info,
 *             a shop with rateLimitPerMinute 1,000,000, one carrier, one warehouse with stock;
 *   baseline  bench/lib/bare-intake.ts: a bare Fastify route with the same body and header schemas
 *             (imported from src/api/schemas.ts) and one `await queue.add()` to BullMQ (no database).
 * Each is its own process, loaded from this one by BENCH_INTAKE_CONNECTIONS (100) keep-alive
 * connections (node:http, closed loop), BENCH_INTAKE_WARMUP (1,000) unmeasured requests first, then
 * BENCH_INTAKE_REQUESTS (5,000), each with its own Idempotency-Key; baseline and engine take turns
 * BENCH_INTAKE_ROUNDS (2) times and the best round of each is kept. Reported: requests/s, p50, p99,
 * the server process's CPU ms per request (and the PostgreSQL backends' for the engine), and
 * engine ÷ baseline (target ≥ 0.5 for requests/s). The load generator shares the machine, so read
 * the ratio. Env also BENCH_POSTGRES_URL, REDIS_URL, BENCH_INTAKE_NODE_ARGS (extra flags for the
 * engine's node, e.g. --cpu-prof). Writes bench/results/intake.json.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { surgeOrders } from '../src/demo/surge.js';
import {
  backendCpu,
  countedDatabase,
  cpuBetween,
  procCpuMs,
  stopChild,
  waitReady,
  createDatabase,
  deleteKeys,
  SqlCounter,
  fmt,
  percentile,
  printTable,
  redisClient,
  sleep,
  writeResult,
  freePort,
} from './lib/common.js';
import { load, type LoadResult } from './lib/http-load.js';

const env = process.env;
const REQUESTS = Number(env.BENCH_INTAKE_REQUESTS ?? 5000);
const WARMUP = Number(env.BENCH_INTAKE_WARMUP ?? 1000);
const CONNECTIONS = Number(env.BENCH_INTAKE_CONNECTIONS ?? 100);
const ROUNDS = Number(env.BENCH_INTAKE_ROUNDS ?? 2);
const ROLE = env.BENCH_INTAKE_ROLE ?? 'api';
const RUN = randomBytes(4).toString('hex');
const PREFIX = `surgeline-bench-intake-${RUN}`;
const BARE_PREFIX = `surgeline-bench-intake-bare-${RUN}`;
const ADMIN = 'bench-admin-token';
const SKUS = ['A', 'B', 'C', 'D', 'E', 'F'];
const REGION = 'bench-region';

interface Measured {
  target: string;
  round: number;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  statuses: Record<number, number>;
  errors: number;
  serverCpuMsPerRequest: number;
  postgresCpuMsPerRequest?: number;
}

async function main() {
  const database = await createDatabase('intake');
  const redis = redisClient();
  const children: ChildProcess[] = [];
  try {
    // Migrated first (as npm run db:migrate would), so the engine is ready when /readyz says so.
    const migrator = countedDatabase(database.url, new SqlCounter());
    await migrator.migrate();
    await migrator.close();
    // The engine, as npm run start:api runs it.
    const port = await freePort();
    const engineUrl = `http://127.0.0.1:${port}`;
    // BENCH_INTAKE_NODE_ARGS: extra node flags for the engine, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
    const nodeArgs = (env.BENCH_INTAKE_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const engine = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/main.ts', ROLE], {
      env: {
        ...env,
        DATABASE_URL: database.url,
        QUEUE_PREFIX: PREFIX,
        ADMIN_TOKEN: ADMIN,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: env.LOG_LEVEL ?? 'info',
        MIGRATE_ON_START: '0',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(engine);
    await waitReady(engineUrl, engine);
    const admin = async (method: string, path: string, body: object) => {
      const r = await fetch(`${engineUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status}: ${await r.text()}`);
      return (await r.json()) as Record<string, unknown>;
    };
    await admin('POST', '/v1/admin/carriers', {
      id: 'bench',
      name: 'Bench',
      kind: 'http',
      baseUrl: 'http://127.0.0.1:9', // never called: no dispatch worker (role api)
      webhookSecret: 'bench-secret-1',
      regions: ['*'],
      rank: 1,
    });
    const shop = (await admin('POST', '/v1/admin/shops', {
      name: 'Bench',
      rateLimitPerMinute: 1_000_000,
    })) as {
      apiKey: string;
    };
    await admin('POST', '/v1/admin/warehouses', { id: 'wh-bench', name: 'Bench', region: REGION });
    for (const sku of SKUS)
      await admin('PUT', '/v1/admin/inventory', { warehouseId: 'wh-bench', sku, quantity: 1_000_000 });

    // The baseline.
    const bare = fork('bench/lib/bare-intake.ts', [], {
      execArgv: ['--import', 'tsx'],
      env: { ...env, BARE_PREFIX },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    children.push(bare);
    const barePort = await new Promise<number>((resolve, reject) => {
      bare.once('message', (m: { port: number }) => resolve(m.port));
      bare.once('exit', (code) => reject(new Error(`baseline exited with ${code}`)));
    });
    const bareUrl = `http://127.0.0.1:${barePort}`;

    const bodies = surgeOrders(Math.max(REQUESTS, WARMUP), SKUS, [REGION]).map((b) => JSON.stringify(b));
    let keyNo = 0;
    const hit = (url: string, requests: number, apiKey?: string): Promise<LoadResult> =>
      load({
        url: `${url}/v1/orders`,
        connections: CONNECTIONS,
        requests,
        make: (i) => ({
          headers: {
            'content-type': 'application/json',
            'idempotency-key': `${RUN}-${keyNo++}`,
            ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
          },
          body: bodies[i % bodies.length],
        }),
      });

    const measure = async (target: 'baseline' | 'engine', round: number): Promise<Measured> => {
      const child = target === 'engine' ? engine : bare;
      const url = target === 'engine' ? engineUrl : bareUrl;
      const cpu0 = procCpuMs(child.pid!);
      const pg0 = target === 'engine' ? await backendCpu(database.admin, database.name) : undefined;
      const r = await hit(url, REQUESTS, target === 'engine' ? shop.apiKey : undefined);
      const cpu1 = procCpuMs(child.pid!);
      let postgresCpuMsPerRequest: number | undefined;
      if (pg0) {
        const pg1 = await backendCpu(database.admin, database.name);
        postgresCpuMsPerRequest = cpuBetween(pg0, pg1) / REQUESTS;
      }
      if ((r.statuses[202] ?? 0) !== REQUESTS)
        console.log(`  ${target}: statuses ${JSON.stringify(r.statuses)} ${JSON.stringify(r.samples)}`);
      return {
        target,
        round,
        requests: REQUESTS,
        perSecond: r.perSecond,
        p50Ms: percentile(r.latencies, 50),
        p99Ms: percentile(r.latencies, 99),
        statuses: r.statuses,
        errors: r.errors,
        serverCpuMsPerRequest: (cpu1 - cpu0) / REQUESTS,
        postgresCpuMsPerRequest,
      };
    };

    if (WARMUP > 0) {
      await hit(bareUrl, WARMUP);
      await hit(engineUrl, WARMUP, shop.apiKey);
    }
    const rounds: Measured[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      rounds.push(await measure('baseline', round));
      rounds.push(await measure('engine', round));
    }
    const best = (target: string) =>
      rounds.filter((r) => r.target === target).sort((a, b) => b.perSecond - a.perSecond)[0];
    const base = best('baseline');
    const eng = best('engine');
    const ratio = {
      perSecond: eng.perSecond / base.perSecond,
      p50: eng.p50Ms / base.p50Ms,
      p99: eng.p99Ms / base.p99Ms,
      serverCpu: eng.serverCpuMsPerRequest / base.serverCpuMsPerRequest,
    };

    console.log(
      `\nSurgeline intake: ${REQUESTS} valid POST /v1/orders per round × ${ROUNDS}, ${CONNECTIONS} keep-alive connections, ` +
        `engine role ${ROLE} on PostgreSQL (${database.name}) vs bare Fastify + queue.add\n`,
    );
    printTable(
      ['target', 'round', 'req/s', 'p50 ms', 'p99 ms', 'server CPU ms/req', 'pg CPU ms/req', 'answers'],
      rounds.map((r) => [
        r.target,
        r.round,
        fmt(r.perSecond, 0),
        fmt(r.p50Ms, 1),
        fmt(r.p99Ms, 1),
        fmt(r.serverCpuMsPerRequest, 3),
        r.postgresCpuMsPerRequest === undefined ? '-' : fmt(r.postgresCpuMsPerRequest, 3),
        Object.entries(r.statuses)
          .map(([s, n]) => `${s}×${n}`)
          .join(' ') + (r.errors ? ` errors×${r.errors}` : ''),
      ]),
    );
    console.log(
      `\nengine ÷ baseline (best rounds): req/s ${fmt(ratio.perSecond, 2)} (target ≥ 0.5${ratio.perSecond >= 0.5 ? ', met' : ', missed'}), ` +
        `p50 ${fmt(ratio.p50, 1)}×, p99 ${fmt(ratio.p99, 1)}×, server CPU per request ${fmt(ratio.serverCpu, 1)}×`,
    );
    writeResult('intake.json', {
      at: new Date().toISOString(),
      requests: REQUESTS,
      warmup: WARMUP,
      connections: CONNECTIONS,
      engineRole: ROLE,
      rounds,
      best: { baseline: base, engine: eng },
      engineVsBaseline: ratio,
      target: { perSecondRatio: 0.5, met: ratio.perSecond >= 0.5 },
    });
  } finally {
    for (const child of children) await stopChild(child);
    await deleteKeys(redis, PREFIX).catch(() => undefined);
    await deleteKeys(redis, BARE_PREFIX).catch(() => undefined);
    redis.disconnect();
    await database.drop();
  }
}

main().catch((error) => {
  console.error(`bench failed: ${(error as Error).stack}`);
  process.exit(1);
});
