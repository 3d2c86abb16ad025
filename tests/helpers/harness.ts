import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { COORDINATION_TABLES } from '../../src/db/coordination.js';
import { queueSchema } from '../../src/queues/backend.js';
import { startProcess, type ContextOverrides, type RunningProcess, type Role } from '../../src/runtime.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const SERVER_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const usesServer = () => process.env.TEST_DB === 'postgres';
/** The pg-queues project: every process runs with QUEUE_BACKEND=postgres (no Redis). */
export const usesPostgresQueues = () => process.env.TEST_QUEUE_BACKEND === 'postgres';

/** Each server test database's URL, by its Database (PostgreSQL queues live in it). */
const serverUrls = new WeakMap<Database, string>();
/** The database of each prefix a test server runs on, for deleteRedisKeys in the pg-queues project. */
const prefixDatabases = new Map<string, string>();

export interface TestDatabase {
  database: Database;
  /** The URL another process can open (a server database), or undefined for PGlite. */
  url: string | undefined;
  drop(): Promise<void>;
}

let pgliteTemplate: Blob | undefined;

/** The pglite project's migrated dump (tests/helpers/pglite-template.ts), read once per test file. */
function migratedPglite(): Blob | undefined {
  const file = inject('pgliteTemplate');
  if (!file) return undefined; // a project without the global setup: PGlite runs initdb itself
  pgliteTemplate ??= new Blob([readFileSync(file)]);
  return pgliteTemplate;
}

/** A fresh, migrated database for one test file: in-memory PGlite, or a new database on the server. */
export async function testDatabase(): Promise<TestDatabase> {
  if (!usesServer()) {
    // Started from the migrated dump (no initdb); migrate() then finds nothing left to apply.
    const database = openDatabase('memory://', '', migratedPglite());
    await database.migrate();
    return { database, url: undefined, drop: () => database.close() };
  }
  const name = `surgeline_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  // A copy of the postgres project's migrated template (tests/helpers/postgres-template.ts), else empty.
  const template = inject('postgresTemplate');
  await admin.unsafe(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const database = openDatabase(url.toString(), '');
  await database.migrate();
  serverUrls.set(database, url.toString());
  return {
    database,
    url: url.toString(),
    async drop() {
      await database.close();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

export function uniquePrefix(): string {
  return `sltest-${randomBytes(5).toString('hex')}`;
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL,
    QUEUE_PREFIX: uniquePrefix(),
    ADMIN_TOKEN,
    DATABASE_URL: 'memory://',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    RECONCILE_INTERVAL_MS: '500',
    RECONCILE_GRACE_MS: '1000',
    ...(usesPostgresQueues() ? { QUEUE_BACKEND: 'postgres' } : {}),
    ...env,
  });
}

/**
 * Deletes every Redis key under a prefix (what a flushed Redis looks like to one deployment). In
 * the pg-queues project, the same loss in PostgreSQL: every job of the prefix's BullMQ schema and
 * every coordination entry under the prefix. Answers how many were deleted.
 */
export async function deleteRedisKeys(prefix: string): Promise<number> {
  const serverUrl = prefixDatabases.get(prefix);
  if (serverUrl) return deletePostgresQueueState(serverUrl, prefix);
  const redis = new Redis(REDIS_URL);
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
  return deleted;
}

async function deletePostgresQueueState(serverUrl: string, prefix: string): Promise<number> {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    const schema = queueSchema(prefix);
    const jobs = await sql.unsafe(`DELETE FROM "${schema}".job`);
    let deleted = jobs.count;
    for (const table of COORDINATION_TABLES) {
      const rows = await sql.unsafe(`DELETE FROM ${table} WHERE key LIKE $1`, [`${prefix}:%`]);
      deleted += rows.count;
    }
    return deleted;
  } finally {
    await sql.end();
  }
}

export interface TestServer extends RunningProcess {
  config: Config;
  url: string;
  admin: Record<string, string>;
  close(): Promise<void>;
}

/** Starts a real process (role `all` by default) on a random port against the given database. */
export async function startTestServer(
  database: Database,
  options: { role?: Role; env?: Record<string, string>; overrides?: ContextOverrides } = {},
): Promise<TestServer> {
  const serverUrl = serverUrls.get(database);
  // PostgreSQL queues live in the test database itself, so the process is told its URL.
  const config = testConfig({
    ...(usesPostgresQueues() && serverUrl ? { DATABASE_URL: serverUrl } : {}),
    ...options.env,
  });
  if (usesPostgresQueues() && serverUrl) prefixDatabases.set(config.queuePrefix, serverUrl);
  const running = await startProcess(options.role ?? 'all', config, { database, ...options.overrides });
  await running.ready;
  // A deployed process takes traffic once /readyz answers 200; the request path's Redis connection
  // has no offline queue, so a request sent before it is connected would answer 503.
  // (Not for a test that points REDIS_URL at nothing on purpose.)
  if (!options.env?.REDIS_URL || usesPostgresQueues()) {
    await waitFor(async () => running.ctx.coord.connected(), 'the shared store', 10_000);
  }
  const { port } = running.app.server.address() as AddressInfo;
  const closeDatabase = database.close;
  database.close = async () => {}; // the test file owns the database; the process must not close it
  return Object.assign(running, {
    config,
    url: `http://127.0.0.1:${port}`,
    admin: { authorization: `Bearer ${ADMIN_TOKEN}` },
    async close() {
      await running.stop();
      database.close = closeDatabase;
      await deleteRedisKeys(config.queuePrefix);
    },
  });
}

export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
