import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema.js';

/** Both drivers share this type, so the rest of the code never knows which one it talks to. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  migrate(): Promise<void>;
  ping(): Promise<void>;
  /**
   * LISTEN on `channel` (a plain lowercase identifier): `onListen` runs once listening, and again
   * after each reconnect (postgres.js listens again by itself), when announcements may have been missed.
   */
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    onListen?: () => void,
  ): Promise<{ unlisten(): Promise<void> }>;
  /** NOTIFY `channel` with `payload` (at most 8000 bytes). */
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

const MIGRATIONS = fileURLToPath(new URL('../../drizzle', import.meta.url));

/**
 * `undefined` → PGlite on disk in dataDir, `memory://` → in-memory PGlite, `postgres://…` → a server.
 * `loadDataDir` (in-memory PGlite only) starts it from a dump (PGlite's dumpDataDir) instead of
 * running initdb: the tests start each database from one migrated dump.
 */
export function openDatabase(databaseUrl: string | undefined, dataDir: string, loadDataDir?: Blob): Database {
  if (databaseUrl === undefined || databaseUrl === 'memory://') {
    if (databaseUrl === undefined) mkdirSync(dataDir, { recursive: true });
    const client = databaseUrl === undefined ? new PGlite(dataDir) : new PGlite({ loadDataDir });
    const db = drizzlePglite({ client, schema }) as unknown as Db;
    return {
      db,
      kind: 'pglite',
      migrate: () => migratePglite(db as never, { migrationsFolder: MIGRATIONS }),
      ping: async () => {
        await client.query('select 1');
      },
      // One in-process backend: it never reconnects, so onListen runs once.
      listen: async (channel, onMessage, onListen) => {
        const unlisten = await client.listen(channel, onMessage);
        onListen?.();
        return { unlisten: () => unlisten() };
      },
      notify: async (channel, payload) => {
        await client.query('select pg_notify($1, $2)', [channel, payload]);
      },
      close: () => client.close(),
    };
  }
  const client = postgres(databaseUrl, {
    max: 10,
    onnotice: () => {},
    connect_timeout: 5,
    // A dead server must not hang a request forever.
    idle_timeout: 30,
    // Reconnect within a second (postgres.js backs off up to 20 s), so an outage answers 503 at once and recovery is quick.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
  });
  return serverDatabase(client);
}

/** A Database over a postgres.js client (also used by the benches, with a client that counts statements). */
export function serverDatabase(client: postgres.Sql): Database {
  const db = drizzlePostgres({ client, schema }) as unknown as Db;
  return {
    db,
    kind: 'postgres',
    migrate: () => migratePostgres(db as never, { migrationsFolder: MIGRATIONS }),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    // postgres.js listens on a connection of its own, and listens again after it reconnects.
    listen: async (channel, onMessage, onListen) => {
      const { unlisten } = await client.listen(channel, onMessage, onListen);
      return { unlisten };
    },
    notify: async (channel, payload) => {
      await client.notify(channel, payload);
    },
    close: () => client.end({ timeout: 5 }),
  };
}
