import {
  Queue,
  Worker,
  createPostgresBackend,
  runMigrations,
  type BackendFactory,
  type IQueueBackend,
  type JobsOptions,
  type Processor,
  type Telemetry,
  type WorkerOptions,
} from 'bullmq';
import pg from 'pg';
import { duplicateConnection, type RedisClient } from './connection.js';

/** Worker settings the engine chooses; where the jobs live is the backend's. */
export type WorkerSettings = Omit<WorkerOptions, 'connection' | 'prefix'>;

/**
 * Where BullMQ keeps the engine's queues: Redis (the default), or PostgreSQL with
 * QUEUE_BACKEND=postgres (BullMQ's PostgreSQL backend, in the records' server).
 */
export interface QueueBackend {
  readonly kind: 'redis' | 'postgres';
  /** The Redis backend's connection (benches and tests look at it); unset on PostgreSQL. */
  readonly redis?: RedisClient;
  /**
   * False while the store is known to be away: BullMQ would wait for it rather than fail, so
   * readers that must answer at once (metrics, counts) skip it.
   */
  connected(): boolean;
  queue(name: string, options: { defaultJobOptions?: JobsOptions; telemetry?: Telemetry }): Queue;
  worker(name: string, processor: Processor, settings: WorkerSettings): Worker;
  /** Whatever must exist before the first job (PostgreSQL: BullMQ's schema); retried by the caller. */
  prepare(): Promise<void>;
  close(): Promise<void>;
}

export function redisQueueBackend(redis: RedisClient, prefix: string): QueueBackend {
  return {
    kind: 'redis',
    redis,
    connected: () => redis.status === 'ready',
    queue: (name, options) => new Queue(name, { connection: redis, prefix, ...options }),
    worker: (name, processor, settings) =>
      new Worker(name, processor, {
        // Its own connection, which waits for Redis rather than failing (BullMQ's advice for workers).
        connection: duplicateConnection(redis, { maxRetriesPerRequest: null, enableOfflineQueue: true }),
        prefix,
        ...settings,
      }),
    prepare: async () => {},
    close: async () => {},
  };
}

/**
 * BullMQ's schema for a QUEUE_PREFIX: a PostgreSQL identifier, so anything else becomes `_`
 * (`{surgeline}` → `bullmq__surgeline_`). Deployments sharing a server keep apart by prefix.
 */
export function queueSchema(prefix: string): string {
  return `bullmq_${prefix.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 63);
}

/**
 * One pg pool per process for every queue and worker: `poolSize` connections for queries, and one
 * more per worker, which keeps it for LISTEN (BullMQ waits for jobs on it).
 * The schema is pinned on each connection (search_path), as BullMQ requires for a pool it did
 * not make (see pinnedBackend).
 */
export function postgresQueueBackend(databaseUrl: string, prefix: string, poolSize: number): QueueBackend {
  const schema = queueSchema(prefix);
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: 10_000,
    options: `-c search_path="${schema}"`,
  });
  // A connection that fails marks the server away until one succeeds again.
  let up = true;
  pool.setMaxListeners(0); // every queue and worker listens for the pool's errors
  pool.on('error', () => {
    up = false; // an idle client lost: the pool replaces it
  });
  pool.on('connect', () => {
    up = true;
  });
  const { factory, checkAgain } = pinnedBackend(createPostgresBackend, schema);
  return {
    kind: 'postgres',
    connected: () => up,
    queue: (name, options) => new Queue(name, { connection: pool, ...options }, factory) as unknown as Queue,
    worker(name, processor, settings) {
      // The worker keeps one of the pool's connections for LISTEN as long as it lives: one more
      // for it, so the queries keep QUEUE_POOL_SIZE (carriers added later bring workers too).
      (pool as unknown as { options: { max: number } }).options.max += 1;
      return new Worker(name, processor, { connection: pool, ...settings }, factory) as unknown as Worker;
    },
    async prepare() {
      // On one connection: the migrations' advisory lock and transaction share its session.
      const client = await pool.connect();
      try {
        await runMigrations(client, schema);
      } finally {
        client.release();
      }
      checkAgain();
    },
    async close() {
      await pool.end().catch(() => undefined);
    },
  };
}

interface Patchable {
  readyPromise?: Promise<void>;
  connection?: { readyPromise?: Promise<void>; schema: string };
  waitUntilReady(): Promise<void>;
}

/** How long a failed readiness check stands before the next use checks again. */
const READY_RETRY_MS = 1_000;

/**
 * Two things BullMQ's PostgreSQL backend does not do for a pool it did not make: check the
 * schema we pinned (it assumes `bullmq`), and check readiness again after a failure (it keeps
 * the first answer, a failure too). Both are set on the backend as it is made.
 */
function pinnedBackend<B extends IQueueBackend, C>(
  factory: BackendFactory<B, C>,
  schema: string,
): { factory: BackendFactory<B, C>; checkAgain(): void } {
  const made: Patchable[] = [];
  const forget = (backend: Patchable) => {
    backend.readyPromise = undefined;
    if (backend.connection) backend.connection.readyPromise = undefined;
  };
  const pinned: BackendFactory<B, C> = (...args) => {
    const backend = factory(...args) as B & Patchable;
    made.push(backend);
    if (backend.connection) backend.connection.schema = schema;
    const waitUntilReady = backend.waitUntilReady.bind(backend);
    backend.waitUntilReady = () =>
      waitUntilReady().catch((error: unknown) => {
        // Kept for a moment, so loops that retry at once do not hammer a server that is away.
        setTimeout(() => forget(backend), READY_RETRY_MS).unref();
        throw error;
      });
    return backend;
  };
  // Once the schema exists, whatever failed for want of it checks again at once.
  return { factory: pinned, checkAgain: () => made.forEach(forget) };
}
