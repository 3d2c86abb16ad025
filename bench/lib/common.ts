/**
 * What the cost, intake, pipeline and memory benches share: a throw-away PostgreSQL database, the
 * Redis keys of one prefix (deleted, counted, sized), client-side counters of SQL statements and
 * Redis commands, and small printing helpers. Nothing here names a queue of the engine: queues are
 * found by scanning the prefix (`<prefix>:<queue>:id` counters), so a new topology (priority lanes,
 * per-carrier queues) is counted as it is.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import postgres from 'postgres';
import { serverDatabase, type Database } from '../../src/db/client.js';
import type { RedisClient } from '../../src/queues/connection.js';
import type { FastifyInstance } from 'fastify';

export const SERVER_URL = process.env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh database `bench_<tag>_<pid>` on BENCH_POSTGRES_URL, dropped by `drop()`. */
export async function createDatabase(tag: string) {
  const name = `bench_${tag}_${process.pid}`;
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    /** The admin connection (to the server's maintenance database): reads pg_stat_database without touching the bench database. */
    admin,
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.end({ timeout: 5 });
    },
  };
}

/**
 * The engine's PostgreSQL database as src/db/client.ts opens it (same pool options), with every
 * statement the engine sends counted here (postgres.js `debug` hook: one call per statement
 * executed, BEGIN and COMMIT included). Pass it to startProcess as `overrides.database`.
 */
export function countedDatabase(url: string, counter: SqlCounter): Database {
  const client = postgres(url, {
    max: 10,
    onnotice: () => {},
    connect_timeout: 5,
    idle_timeout: 30,
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    debug: (connection: number, query: string) => counter.count(query, connection),
  });
  return serverDatabase(client);
}

/**
 * Statements by kind (first keyword, and the table of an insert/update/delete or the first FROM),
 * and transactions: explicit BEGINs + statements sent outside any (each its own transaction),
 * told apart per connection.
 */
export class SqlCounter {
  total = 0;
  transactions = 0;
  byKind = new Map<string, number>();
  private open = new Set<number>();
  count(query: string, connection = 0) {
    this.total++;
    const kind = sqlKind(query);
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    if (kind === 'begin') {
      this.open.add(connection);
      this.transactions++;
    } else if (kind === 'commit' || kind === 'rollback') this.open.delete(connection);
    else if (!this.open.has(connection)) this.transactions++;
  }
  snapshot() {
    return { total: this.total, transactions: this.transactions, byKind: new Map(this.byKind) };
  }
}
export type SqlSnapshot = ReturnType<SqlCounter['snapshot']>;

export function sqlKind(query: string): string {
  const q = query.trim().replace(/\s+/g, ' ');
  const verb = (q.match(/^\w+/)?.[0] ?? '?').toLowerCase();
  if (
    verb === 'begin' ||
    verb === 'commit' ||
    verb === 'rollback' ||
    verb === 'savepoint' ||
    verb === 'release'
  )
    return verb;
  const table = (re: RegExp) => q.match(re)?.[1]?.replace(/"/g, '') ?? '?';
  if (verb === 'insert') return `insert ${table(/^insert into ("?[\w.]+"?)/i)}`;
  if (verb === 'update') return `update ${table(/^update ("?[\w.]+"?)/i)}`;
  if (verb === 'delete') return `delete ${table(/^delete from ("?[\w.]+"?)/i)}`;
  if (verb === 'with') return `with … ${table(/\b(?:insert into|update|delete from) ("?[\w.]+"?)/i)}`;
  if (verb === 'select') return `select ${table(/ from ("?[\w.]+"?)/i)}`;
  return verb;
}

export function sqlDelta(a: SqlSnapshot, b: SqlSnapshot) {
  const byKind: Record<string, number> = {};
  for (const [k, n] of b.byKind) {
    const d = n - (a.byKind.get(k) ?? 0);
    if (d > 0) byKind[k] = d;
  }
  return { total: b.total - a.total, transactions: b.transactions - a.transactions, byKind };
}

/** pg_stat_database counters of one database (read from another connection, so reading adds nothing). */
export async function pgStats(admin: postgres.Sql, database: string) {
  await admin`select pg_stat_clear_snapshot()`;
  const [row] = await admin`
    select xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted,
           blks_read, blks_hit
    from pg_stat_database where datname = ${database}`;
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)])) as Record<string, number>;
}

/** utime + stime of a process, ms (Linux /proc, 100 ticks/s, so 10 ms steps); NaN where there is no /proc or no such process. */
export function procCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** utime + stime (ms) of every backend connected to `database`, by pid (from `admin`, a connection to another database). */
export async function backendCpu(admin: postgres.Sql, database: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const { pid } of await admin`select pid from pg_stat_activity where datname = ${database}`) {
    const ms = procCpuMs(Number(pid));
    if (Number.isFinite(ms)) out.set(Number(pid), ms); // gone, or /proc not readable: not counted
  }
  return out;
}

/** CPU ms between two `backendCpu` readings (a backend gone by the second reading is not counted; one new since the first counts from 0). */
export const cpuBetween = (a: Map<number, number>, b: Map<number, number>) =>
  [...b].reduce((sum, [pid, ms]) => sum + ms - (a.get(pid) ?? 0), 0);

/** The whole machine's CPU from /proc/stat, ms summed over every core: busy (not idle, not iowait) and all. */
export function machineCpuMs(): { busy: number; total: number; cores: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  const all = lines[0].split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
  const total = all.reduce((a, b) => a + b, 0);
  const cores = lines.filter((l) => /^cpu\d+ /.test(l)).length;
  return { busy: ((total - all[3] - all[4]) * 1000) / 100, total: (total * 1000) / 100, cores };
}

/** Waits until the process at `url` answers /readyz 200 (Redis and database reachable); throws if it exits or 60 s pass. */
export async function waitReady(url: string, child: ChildProcess, what = 'engine') {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`${what} not ready after 60 s`);
}

/** SIGTERM, then up to `graceMs` for the process to exit by itself, then SIGKILL. Answers how it ended. */
export async function stopChild(
  child: ChildProcess,
  graceMs = 15_000,
): Promise<{ code: number | null; killed: boolean }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, killed: false };
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(graceMs)]);
  if (child.exitCode !== null) return { code: child.exitCode, killed: false };
  child.kill('SIGKILL');
  await Promise.race([exited, sleep(2000)]);
  return { code: child.exitCode, killed: true };
}

export function diff(a: Record<string, number>, b: Record<string, number>) {
  return Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - (a[k] ?? 0)]));
}

// ---------------------------------------------------------------- Redis

/**
 * Counts every command any ioredis client of this process sends (BullMQ's included: it talks
 * through ioredis), by name; a Lua script is named by the BullMQ command it implements
 * (`addPrioritizedJob`, `moveToFinished`, …). A pipeline's commands are counted one by one and the
 * pipeline once as a round trip. Clients passed to `exclude` (the bench's own) are not counted.
 */
export class RedisCounter {
  commands = 0;
  roundTrips = 0;
  byName = new Map<string, number>();
  private excluded = new WeakSet<object>();
  private pipelines = new WeakSet<object>();
  private shaNames = new Map<string, string>();

  install() {
    const proto = Redis.prototype as unknown as { sendCommand: (...a: unknown[]) => unknown };
    const original = proto.sendCommand;
    const self = this;
    proto.sendCommand = function (this: Redis, command: { name: string; args: unknown[] }, stream?: object) {
      if (!self.excluded.has(this)) self.record(this, command, stream);
      return original.apply(this, [command, stream]);
    } as never;
  }
  exclude(client: Redis) {
    this.excluded.add(client);
    return client;
  }
  private record(client: Redis, command: { name: string; args: unknown[] }, stream?: object) {
    this.commands++;
    if (!stream) this.roundTrips++;
    else if (!this.pipelines.has(stream)) {
      this.pipelines.add(stream);
      this.roundTrips++;
    }
    let name = command.name;
    if (name === 'evalsha' || name === 'eval') {
      const sha = String(command.args[0]);
      let script = this.shaNames.get(sha);
      if (!script) {
        const set = (client as unknown as { scriptsSet?: Record<string, { sha: string }> }).scriptsSet ?? {};
        for (const [n, s] of Object.entries(set)) this.shaNames.set(s.sha, n);
        script =
          this.shaNames.get(sha) ??
          (/^[0-9a-f]{40}$/.test(sha)
            ? `script ${sha.slice(0, 8)}`
            : `eval "${sha.replace(/\s+/g, ' ').trim().slice(0, 40)}…"`);
      }
      name = `lua ${script}`;
    }
    this.byName.set(name, (this.byName.get(name) ?? 0) + 1);
  }
  snapshot() {
    return { commands: this.commands, roundTrips: this.roundTrips, byName: new Map(this.byName) };
  }
}
export type RedisSnapshot = ReturnType<RedisCounter['snapshot']>;

export function redisDelta(a: RedisSnapshot, b: RedisSnapshot) {
  const byName: Record<string, number> = {};
  for (const [k, n] of b.byName) {
    const d = n - (a.byName.get(k) ?? 0);
    if (d > 0) byName[k] = d;
  }
  return { commands: b.commands - a.commands, roundTrips: b.roundTrips - a.roundTrips, byName };
}

/** INFO commandstats as { command: calls } (server-wide: counts commands run inside Lua scripts, and every other client's). */
export async function commandStats(redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^cmdstat_([^:]+):calls=(\d+)/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Every key under `prefix`; on a Redis Cluster, each master's. */
export async function scanKeys(redis: RedisClient, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of redis instanceof Cluster ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys;
}

export async function deleteKeys(redis: RedisClient, prefix: string) {
  const keys = await scanKeys(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
}

/**
 * Jobs added per queue under `prefix`, from each queue's `<prefix>:<queue>:id` counter, which
 * BullMQ increments on every add (an add deduplicated by its job id included), whatever the
 * queues are named.
 */
export async function jobAdds(redis: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const keys = (await scanKeys(redis, prefix)).filter((k) => {
    const rest = k.slice(prefix.length + 1);
    return rest.endsWith(':id') && !rest.slice(0, -3).includes(':');
  });
  for (const key of keys.sort()) {
    const value = await redis.get(key);
    out[key.slice(prefix.length + 1, -3)] = Number(value ?? 0);
  }
  return out;
}

/** Jobs not yet finished (wait, prioritized, delayed, active, paused) over every queue under the prefix. */
export async function pendingJobs(redis: Redis, prefix: string): Promise<number> {
  const queues = Object.keys(await jobAdds(redis, prefix));
  let n = 0;
  for (const q of queues) {
    const base = `${prefix}:${q}`;
    const [wait, paused, active, prioritized, delayed] = await Promise.all([
      redis.llen(`${base}:wait`),
      redis.llen(`${base}:paused`),
      redis.llen(`${base}:active`),
      redis.zcard(`${base}:prioritized`),
      redis.zcard(`${base}:delayed`),
    ]);
    n += wait + paused + active + prioritized + delayed;
  }
  return n;
}

/** The redis-server's pid (INFO server `process_id`), for its CPU from /proc: only meaningful when it runs on this machine. */
export async function redisServerPid(redis: Redis): Promise<number> {
  return Number((await redis.info('server')).match(/process_id:(\d+)/)?.[1] ?? NaN);
}

/** Server-wide Redis counters (INFO stats and clients): commands processed, connected clients. */
export async function redisServerStats(redis: Redis) {
  const text = (await redis.info('stats')) + (await redis.info('clients'));
  const get = (k: string) => Number(text.match(new RegExp(`${k}:(\\d+)`))?.[1] ?? NaN);
  return { commands: get('total_commands_processed'), clients: get('connected_clients') };
}

export function redisClient(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
}

// ---------------------------------------------------------------- output

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Prints rows as an aligned table (first column left-aligned, the others right-aligned). */
export function printTable(header: string[], rows: (string | number)[][]) {
  const cells = [header, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const [n, r] of cells.entries()) {
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

export function writeResult(file: string, data: unknown) {
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/${file}`, JSON.stringify(data, null, 2) + '\n');
  console.log(`\nwritten: bench/results/${file}`);
}

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Answers an admin call made with `inject` (or throws naming it), for the benches' set-up. */
export type AdminCall = (method: 'POST' | 'PUT' | 'PATCH', url: string, payload: object) => Promise<unknown>;

export function adminCaller(app: FastifyInstance, token: string): AdminCall {
  return async (method, url, payload) => {
    const r = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, payload });
    if (r.statusCode >= 300) throw new Error(`${method} ${url} → ${r.statusCode}: ${r.body}`);
    return r.json();
  };
}

/** An admin call over HTTP, for an engine running in another process. */
export function httpAdminCaller(baseUrl: string, token: string): AdminCall {
  return async (method, url, payload) => {
    const r = await fetch(`${baseUrl}${url}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    });
    if (r.status >= 300) throw new Error(`${method} ${url} → ${r.status}: ${await r.text()}`);
    return r.json();
  };
}

/**
 * The benches' world: one carrier serving every region, one shop that no rate limit slows, one
 * warehouse in `region` holding a million of each SKU. Answers the shop's API key.
 */
export async function seedBenchWorld(
  call: AdminCall,
  world: { carrierId: string; carrierUrl: string; webhookSecret: string; region: string; skus: string[] },
): Promise<string> {
  await call('POST', '/v1/admin/carriers', {
    id: world.carrierId,
    name: 'Bench',
    kind: 'http',
    baseUrl: world.carrierUrl,
    webhookSecret: world.webhookSecret,
    regions: ['*'],
    rank: 1,
  });
  const shop = (await call('POST', '/v1/admin/shops', { name: 'Bench', rateLimitPerMinute: 1_000_000 })) as {
    apiKey: string;
  };
  await call('POST', '/v1/admin/warehouses', { id: 'wh-bench', name: 'Bench', region: world.region });
  for (const sku of world.skus)
    await call('PUT', '/v1/admin/inventory', { warehouseId: 'wh-bench', sku, quantity: 1_000_000 });
  return shop.apiKey;
}

/** A TCP port free on 127.0.0.1 a moment ago (for a process the bench starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
