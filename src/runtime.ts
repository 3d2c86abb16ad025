import type { Telemetry } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './api/app.js';
import { ConfigError, type Config } from './config.js';
import type { Context } from './context.js';
import { openDatabase, type Database } from './db/client.js';
import { createBreakerStore } from './integrations/carriers/breaker-store.js';
import { httpCarrier } from './integrations/carriers/http-carrier.js';
import { notificationProviders } from './integrations/notify/index.js';
import type { CarrierAdapter } from './integrations/carriers/types.js';
import type { NotificationProvider } from './integrations/notify/types.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createCarrierCache } from './queues/carrier-changes.js';
import { postgresQueueBackend, redisQueueBackend, type QueueBackend } from './queues/backend.js';
import type { Coordination } from './queues/coordination.js';
import { Queues, redisConnection } from './queues/producer.js';
import { redisCoordination } from './queues/redis-coordination.js';
import { postgresCoordination } from './db/coordination.js';
import { startTracing, type Tracing } from './telemetry.js';
import { startWorkers, type WorkerPool } from './workers/runner.js';

export type Role = 'all' | 'api' | 'worker';

export interface ContextOverrides {
  database?: Database;
  log?: Logger;
  carriers?: CarrierAdapter;
  notifier?: NotificationProvider;
  /** BullMQ's telemetry (startTracing's); unset: no job spans. */
  telemetry?: Telemetry;
}

/** Connections and adapters of one process. Nothing here waits for Redis or the database. */
export function createContext(config: Config, overrides: ContextOverrides = {}): Context {
  const log = overrides.log ?? createLogger(config.logLevel);
  const database = overrides.database ?? openDatabase(config.databaseUrl, config.dataDir);
  const { coord, backend } = sharedStores(config, database, log);
  const queues = new Queues(backend, coord, config, overrides.telemetry);
  return {
    config,
    log,
    database,
    db: database.db,
    coord,
    queues,
    carrierCache: createCarrierCache({ db: database.db, coord, config }),
    // A probe holds its place for one call's timeout and a margin, in case it never reports.
    breakers: createBreakerStore(
      coord,
      config.queuePrefix,
      { ...config.breaker, probeLeaseMs: config.carrierTimeoutMs + 5_000 },
      log,
    ),
    carriers: overrides.carriers ?? httpCarrier(config.carrierTimeoutMs, log),
    notifier: overrides.notifier ?? notificationProviders(config, log),
    telemetry: overrides.telemetry,
  };
}

/** What processes share beside the records: on Redis, or (QUEUE_BACKEND=postgres) in the database server. */
function sharedStores(
  config: Config,
  database: Database,
  log: Logger,
): { coord: Coordination; backend: QueueBackend } {
  if (config.queueBackend === 'postgres') {
    return {
      coord: postgresCoordination(database, config.queuePrefix),
      backend: postgresQueueBackend(config.databaseUrl!, config.queuePrefix, config.queuePoolSize),
    };
  }
  // Fail fast while Redis is away (the caller answers 503 or leaves the work to the reconciler).
  // REDIS_CLUSTER_NODES set: a Cluster, and every connection duplicated from it is one too.
  const redis = redisConnection(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', (error) => log.debug({ err: error.message }, 'redis connection error'));
  return {
    coord: redisCoordination(redis, config.queuePrefix),
    backend: redisQueueBackend(redis, config.queuePrefix),
  };
}

/**
 * Retries until the database answers, so a process started before its database still comes up.
 * `migrateRecords` false (MIGRATE_ON_START=0 on a server): only the queue backend's own schema.
 */
async function migrateWhenReachable(
  ctx: Context,
  stopped: () => boolean,
  migrateRecords: boolean,
): Promise<boolean> {
  for (let delay = 500; !stopped(); delay = Math.min(delay * 2, 10_000)) {
    try {
      if (migrateRecords) await ctx.database.migrate();
      await ctx.queues.backend.prepare();
      return true;
    } catch (error) {
      ctx.log.warn(
        { err: (error as Error).message, retryInMs: delay },
        'database not ready for migrations; retrying',
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  return false;
}

export interface RunningProcess {
  ctx: Context;
  app: FastifyInstance;
  metrics: Metrics;
  /** OpenTelemetry: on when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing: Tracing;
  workers?: WorkerPool;
  /** Resolves once migrations (if due) ran and the workers (if any) started. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts one process: `all` (API and every worker), `api`, or `worker` (WORKER_QUEUES, with
 * /healthz, /readyz and /metrics on PORT). The HTTP server is listening before the database or
 * Redis answer; workers start once the migrations due at start have run.
 */
export async function startProcess(
  role: Role,
  config: Config,
  overrides: ContextOverrides = {},
  listen = true,
): Promise<RunningProcess> {
  const embedded = config.databaseUrl === undefined || config.databaseUrl === 'memory://';
  if (role !== 'all' && embedded && !overrides.database) {
    throw new ConfigError(
      `DATABASE_URL must point at a PostgreSQL server for "${role}" alone: embedded PGlite belongs to one process (use npm start for all-in-one)`,
    );
  }
  const tracing = await startTracing(config);
  const ctx = createContext(config, { telemetry: tracing.telemetry, ...overrides });
  if (tracing.enabled) {
    // The endpoint's origin only: a URL may carry credentials.
    const { origin } = new URL(config.tracing.endpoint!);
    ctx.log.info(
      { tracing: 'on', endpoint: origin, serviceName: config.tracing.serviceName },
      'tracing on: OTLP/HTTP',
    );
  } else ctx.log.info({ tracing: 'off' }, 'tracing off (OTEL_EXPORTER_OTLP_ENDPOINT unset)');
  const metrics = createMetrics(ctx);
  ctx.statusChanges = metrics.ordersTotal;
  const app = await buildApp({
    ctx,
    metrics,
    surface: role === 'worker' ? 'service' : 'full',
    tracing: tracing.enabled,
  });
  let stopped = false;
  let workers: WorkerPool | undefined;

  const ready = (async () => {
    const migrateRecords = embedded || config.migrateOnStart;
    if (migrateRecords || ctx.queues.backend.kind === 'postgres') {
      if (!(await migrateWhenReachable(ctx, () => stopped, migrateRecords))) return;
    }
    if (role !== 'api' && !stopped) workers = startWorkers(ctx, config.workerQueues, metrics);
  })();

  if (listen) {
    await app.listen({ port: config.port, host: config.host });
    if (config.adminTokenGenerated) {
      ctx.log.warn(
        { adminToken: config.adminToken },
        'ADMIN_TOKEN not set: generated one for this process (set it when running several API processes)',
      );
    }
  }

  return {
    ctx,
    app,
    metrics,
    tracing,
    get workers() {
      return workers;
    },
    ready,
    async stop() {
      stopped = true;
      await app.close(); // stop taking requests first
      await ready.catch(() => undefined);
      await workers?.close(); // finishes jobs in flight; a job cut off is handed back by its lock expiring
      await ctx.queues.close().catch(() => undefined);
      await ctx.notifier.close?.().catch(() => undefined); // pooled SMTP connections
      ctx.carrierCache?.close();
      await ctx.coord.close().catch(() => undefined);
      await ctx.database.close().catch(() => undefined);
      await tracing.shutdown(); // last: the spans of the work finished above are exported
    },
  };
}
