import { randomBytes } from 'node:crypto';
import { QUEUE_NAMES, type QueueName } from './queues/topology.js';
import { STRATEGIES } from './domain/allocation/index.js';
import { regionPair } from './domain/allocation/strategy.js';
import type { Watermarks } from './domain/shedding.js';
import { validMinShares, type MinShares } from './domain/lanes.js';
import { hashTag, type RedisClusterSettings } from './queues/connection.js';

/** Sender of customer email when SMTP_FROM is unset (contract, Configuration). */
export const DEFAULT_SMTP_FROM = 'Surgeline <no-reply@localhost>';

export interface Config {
  port: number;
  host: string;
  redisUrl: string;
  /** REDIS_CLUSTER_NODES: set, every connection is to this Redis Cluster (and REDIS_URL is not used). */
  redisCluster: RedisClusterSettings | undefined;
  queuePrefix: string;
  /**
   * QUEUE_BACKEND: where queues, rate limits, breakers and locks live. `redis` (default), or
   * `postgres`: BullMQ's PostgreSQL backend and the engine's own coordination tables in the
   * DATABASE_URL server, no Redis at all.
   */
  queueBackend: 'redis' | 'postgres';
  /** QUEUE_POOL_SIZE: the PostgreSQL queue backend's connections for queries per process, besides one per worker (postgres only). */
  queuePoolSize: number;
  /** undefined: PGlite on disk in dataDir; 'memory://': in-memory PGlite; postgres://…: a server. */
  databaseUrl: string | undefined;
  dataDir: string;
  adminToken: string;
  adminTokenGenerated: boolean;
  migrateOnStart: boolean;
  workerQueues: QueueName[];
  logLevel: string;
  shutdownTimeoutMs: number;
  publicUrl: string;
  carrierTimeoutMs: number;
  /** Booking calls to one carrier for one parcel before it fails over (contract: at most 5). */
  dispatchAttempts: number;
  /** How often a worker process re-reads the carriers (new carriers, changed rate limits). */
  carrierRefreshMs: number;
  /** How long past its expected event time a parcel counts as overdue. */
  overdueGraceHours: number;
  notificationAttempts: number;
  /** HTTP SMS provider (SMS_PROVIDER_URL / SMS_PROVIDER_TOKEN); url unset: SMS are recorded, not sent. */
  sms: { url: string | undefined; token: string | undefined };
  /** SMTP for customer email (SMTP_URL / SMTP_FROM); url unset: email is recorded, not sent. */
  smtp: { url: string | undefined; from: string };
  /** Messages per second each notification channel's queue takes, across every replica; 0: no limit. */
  notificationRates: { sms: number; email: number; webhook: number };
  reconcileIntervalMs: number;
  reconcileGraceMs: number;
  workerLockDurationMs: number;
  workerStalledIntervalMs: number;
  workerConcurrency: number;
  defaultTransitHours: number;
  /** Allocation (ALLOCATION_STRATEGY, ALLOW_SPLIT, REGION_DISTANCES; README: Allocation). */
  allocation: {
    strategy: string;
    allowSplit: boolean;
    /** Keyed by regionPair(a, b). */
    regionDistances: Map<string, number>;
  };
  /** A stock row whose cover is shorter than this, with nothing inbound, raises an alert. */
  stockRiskHours: number;
  /** Intake backlog at which each priority is shed (SHED_STANDARD_AT / SHED_EXPRESS_AT / SHED_ALL_AT). */
  shedAt: Watermarks;
  /** Orders per second all shops together may post (INTAKE_MAX_PER_SECOND); undefined: no ceiling. */
  intakeMaxPerSecond: number | undefined;
  /** Each lower class's minimum share of a saturated stage's work (domain/lanes.ts). */
  minShares: MinShares;
  /**
   * Group commit (INTAKE_BATCH_MS / INTAKE_BATCH_SIZE): concurrent orders are gathered for at most
   * `ms` or until `size` are waiting, then written in one transaction (steps/intake-batch.ts).
   */
  intakeBatch: { ms: number; size: number };
  /** OpenTelemetry traces (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_SERVICE_NAME); endpoint unset: off. */
  tracing: { endpoint: string | undefined; serviceName: string };
  /** Carrier circuit breakers (BREAKER_*); every process should run with the same. */
  breaker: {
    failureThreshold: number;
    /** 0–1 */
    failureRate: number;
    minimumCalls: number;
    windowMs: number;
    coolDownMs: number;
    halfOpenProbes: number;
    halfOpenSuccesses: number;
  };
}

/** Thrown for a bad variable; the process prints its one-line message and exits. */
export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function url(env: Env, name: string, fallback: string, protocols: string[]): string {
  const raw = env[name] || fallback;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(
      `${name} must start with ${protocols.map((p) => p + '//').join(' or ')}, got "${raw}"`,
    );
  }
  return raw.replace(/\/$/, '');
}

/**
 * An optional URL. Its value is not echoed when it may hold credentials (SMTP_URL's user:pass).
 */
function optionalUrl(env: Env, name: string, protocols: string[], secret = false): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const shown = secret ? '' : `, got "${raw}"`;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL${shown}`);
  }
  if (!protocols.includes(parsed.protocol) || !parsed.hostname) {
    throw new ConfigError(
      `${name} must be a ${protocols.map((p) => p + '//').join(' or ')} URL with a host${shown}`,
    );
  }
  return raw;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw !== '0' && raw !== '1') throw new ConfigError(`${name} must be 0 or 1, got "${raw}"`);
  return raw === '1';
}

/** `a:b=12,a:c=30`: the distance between two regions, either way round. */
function distances(env: Env, name: string): Map<string, number> {
  const table = new Map<string, number>();
  const raw = env[name]?.trim();
  if (!raw) return table;
  for (const entry of raw.split(',')) {
    const match = /^\s*([^:=,\s]+):([^:=,\s]+)=(\d+(?:\.\d+)?)\s*$/.exec(entry);
    if (!match) {
      throw new ConfigError(`${name} must list region pairs as "a:b=12,a:c=30", got "${entry.trim()}"`);
    }
    table.set(regionPair(match[1], match[2]), Number(match[3]));
  }
  return table;
}

/** A name in the allocation strategy registry (src/domain/allocation/index.ts). */
function strategyName(env: Env, name: string, fallback: string): string {
  const raw = env[name] || fallback;
  const known = Object.keys(STRATEGIES);
  if (!known.includes(raw)) throw new ConfigError(`${name} must be one of ${known.join(', ')}, got "${raw}"`);
  return raw;
}

/** MIN_SHARE_STANDARD_PERCENT / MIN_SHARE_EXPRESS_PERCENT: together below 100, so essential keeps room. */
function minShares(env: Env): MinShares {
  const standard = int(env, 'MIN_SHARE_STANDARD_PERCENT', 10, 0, 99) / 100;
  const express = int(env, 'MIN_SHARE_EXPRESS_PERCENT', 20, 0, 99) / 100;
  const shares = { standard, express };
  if (!validMinShares(shares)) {
    throw new ConfigError(
      `MIN_SHARE_STANDARD_PERCENT + MIN_SHARE_EXPRESS_PERCENT must be below 100, got ${Math.round((standard + express) * 100)}`,
    );
  }
  return shares;
}

/** The load-shedding watermarks, each at least the one before (domain/shedding.ts). */
function watermarks(env: Env): Watermarks {
  const standard = int(env, 'SHED_STANDARD_AT', 20_000, 1, 100_000_000);
  const express = int(env, 'SHED_EXPRESS_AT', Math.max(50_000, standard), 1, 100_000_000);
  const essential = int(env, 'SHED_ALL_AT', Math.max(100_000, express), 1, 100_000_000);
  if (express < standard) {
    throw new ConfigError(
      `SHED_EXPRESS_AT must be at least SHED_STANDARD_AT (${standard}), got "${env.SHED_EXPRESS_AT}"`,
    );
  }
  if (essential < express) {
    throw new ConfigError(
      `SHED_ALL_AT must be at least SHED_EXPRESS_AT (${express}), got "${env.SHED_ALL_AT}"`,
    );
  }
  return { standard, express, essential };
}

/**
 * REDIS_CLUSTER_NODES: comma list of seeds, each `host:port` or a `redis://` / `rediss://` URL
 * (whose user, password and TLS then apply to every node of the cluster). A password is never
 * echoed in the error.
 */
function clusterNodes(env: Env, name: string): RedisClusterSettings | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const settings: RedisClusterSettings = { nodes: [], tls: false };
  const fail = (entry: string, why: string): never => {
    const shown = entry.replace(/\/\/([^@/]*)@/, '//***@');
    throw new ConfigError(
      `${name} must list Redis Cluster seeds as "host:port,host:port" (or redis:// URLs); "${shown}" ${why}`,
    );
  };
  for (const entry of raw.split(',').map((e) => e.trim())) {
    if (!entry) fail(raw, 'has an empty entry');
    let parsed: URL;
    try {
      parsed = new URL(/^[a-z]+:\/\//i.test(entry) ? entry : `redis://${entry}`);
    } catch {
      return fail(entry, 'is not host:port');
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
      fail(entry, 'is not redis:// or rediss://');
    if (!parsed.hostname || (parsed.pathname !== '' && parsed.pathname !== '/') || parsed.search) {
      fail(entry, 'is not host:port');
    }
    if (!/^[a-z]+:\/\//i.test(entry) && !parsed.port) fail(entry, 'has no port');
    const port = Number(parsed.port || '6379');
    if (port < 1) fail(entry, 'has no valid port');
    settings.nodes.push({ host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port });
    if (parsed.protocol === 'rediss:') settings.tls = true;
    if (parsed.username) settings.username = decodeURIComponent(parsed.username);
    if (parsed.password) settings.password = decodeURIComponent(parsed.password);
  }
  return settings;
}

/**
 * QUEUE_PREFIX: with a Redis Cluster it must hold a hash tag (`{surgeline}`), so that every key
 * the engine writes, each starting with the prefix, lands in one slot (BullMQ's scripts and the
 * engine's own touch several keys at once, which a cluster refuses across slots).
 */
function queuePrefix(env: Env, cluster: boolean): string {
  const prefix = env.QUEUE_PREFIX || 'surgeline';
  if (cluster && hashTag(prefix) === undefined) {
    throw new ConfigError(
      `QUEUE_PREFIX must hold a Redis Cluster hash tag such as "{${prefix.replace(/[{}]/g, '') || 'surgeline'}}" when REDIS_CLUSTER_NODES is set, got "${prefix}"`,
    );
  }
  return prefix;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const port = int(env, 'PORT', 3000, 0, 65535);
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && databaseUrl !== 'memory://') {
    url(env, 'DATABASE_URL', databaseUrl, ['postgres:', 'postgresql:']);
  }
  const workerQueues = (env.WORKER_QUEUES || QUEUE_NAMES.join(','))
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  for (const q of workerQueues) {
    if (!(QUEUE_NAMES as readonly string[]).includes(q)) {
      throw new ConfigError(`WORKER_QUEUES lists unknown queue "${q}" (known: ${QUEUE_NAMES.join(', ')})`);
    }
  }
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const migrate = env.MIGRATE_ON_START ?? '1';
  if (migrate !== '0' && migrate !== '1') {
    throw new ConfigError(`MIGRATE_ON_START must be 0 or 1, got "${migrate}"`);
  }
  const adminToken = env.ADMIN_TOKEN || randomBytes(24).toString('base64url');
  const redisCluster = clusterNodes(env, 'REDIS_CLUSTER_NODES');
  const queueBackend = env.QUEUE_BACKEND || 'redis';
  if (queueBackend !== 'redis' && queueBackend !== 'postgres') {
    throw new ConfigError(`QUEUE_BACKEND must be redis or postgres, got "${queueBackend}"`);
  }
  if (queueBackend === 'postgres' && (databaseUrl === undefined || databaseUrl === 'memory://')) {
    throw new ConfigError(
      'QUEUE_BACKEND=postgres needs DATABASE_URL pointing at a PostgreSQL server (BullMQ cannot use embedded PGlite)',
    );
  }
  if (queueBackend === 'postgres' && redisCluster) {
    throw new ConfigError('REDIS_CLUSTER_NODES cannot be set with QUEUE_BACKEND=postgres (no Redis is used)');
  }
  return {
    port,
    host: env.HOST || '0.0.0.0',
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    redisCluster,
    queuePrefix: queuePrefix(env, redisCluster !== undefined),
    queueBackend,
    queuePoolSize: int(env, 'QUEUE_POOL_SIZE', 20, 2, 1000),
    databaseUrl,
    dataDir: env.DATA_DIR || './.data',
    adminToken,
    adminTokenGenerated: !env.ADMIN_TOKEN,
    migrateOnStart: migrate === '1',
    workerQueues: workerQueues as QueueName[],
    logLevel,
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    tracing: {
      endpoint: optionalUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']),
      serviceName: env.OTEL_SERVICE_NAME || 'surgeline',
    },
    publicUrl: url(env, 'PUBLIC_URL', `http://localhost:${port}`, ['http:', 'https:']),
    carrierTimeoutMs: int(env, 'CARRIER_TIMEOUT_MS', 10_000, 10, 120_000),
    dispatchAttempts: int(env, 'DISPATCH_ATTEMPTS', 5, 1, 5),
    carrierRefreshMs: int(env, 'CARRIER_REFRESH_MS', 2000, 100, 600_000),
    overdueGraceHours: int(env, 'OVERDUE_GRACE_HOURS', 12, 0, 24 * 30),
    notificationAttempts: int(env, 'NOTIFICATION_ATTEMPTS', 160, 1, 10_000),
    sms: {
      url: optionalUrl(env, 'SMS_PROVIDER_URL', ['http:', 'https:']),
      token: env.SMS_PROVIDER_TOKEN || undefined,
    },
    smtp: {
      url: optionalUrl(env, 'SMTP_URL', ['smtp:', 'smtps:'], true),
      from: env.SMTP_FROM || DEFAULT_SMTP_FROM,
    },
    notificationRates: {
      sms: int(env, 'SMS_RATE_PER_SECOND', 50, 0, 100_000),
      email: int(env, 'EMAIL_RATE_PER_SECOND', 20, 0, 100_000),
      webhook: int(env, 'WEBHOOK_RATE_PER_SECOND', 0, 0, 100_000),
    },
    reconcileIntervalMs: int(env, 'RECONCILE_INTERVAL_MS', 15_000, 100, 3_600_000),
    reconcileGraceMs: int(env, 'RECONCILE_GRACE_MS', 10_000, 0, 3_600_000),
    workerLockDurationMs: int(env, 'WORKER_LOCK_DURATION_MS', 30_000, 500, 600_000),
    workerStalledIntervalMs: int(env, 'WORKER_STALLED_INTERVAL_MS', 30_000, 500, 600_000),
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', 8, 1, 1000),
    defaultTransitHours: int(env, 'DEFAULT_TRANSIT_HOURS', 48, 1, 24 * 60),
    allocation: {
      strategy: strategyName(env, 'ALLOCATION_STRATEGY', 'nearest-first'),
      allowSplit: flag(env, 'ALLOW_SPLIT', true),
      regionDistances: distances(env, 'REGION_DISTANCES'),
    },
    stockRiskHours: int(env, 'STOCK_RISK_HOURS', 72, 1, 24 * 365),
    shedAt: watermarks(env),
    intakeMaxPerSecond: int(env, 'INTAKE_MAX_PER_SECOND', 0, 0, 1_000_000) || undefined,
    minShares: minShares(env),
    intakeBatch: {
      ms: int(env, 'INTAKE_BATCH_MS', 2, 0, 1_000),
      size: int(env, 'INTAKE_BATCH_SIZE', 100, 1, 1_000),
    },
    breaker: {
      failureThreshold: int(env, 'BREAKER_FAILURE_THRESHOLD', 5, 1, 10_000),
      failureRate: int(env, 'BREAKER_FAILURE_RATE_PERCENT', 50, 1, 100) / 100,
      minimumCalls: int(env, 'BREAKER_MINIMUM_CALLS', 10, 1, 100_000),
      windowMs: int(env, 'BREAKER_WINDOW_MS', 30_000, 1_000, 3_600_000),
      coolDownMs: int(env, 'BREAKER_COOL_DOWN_MS', 15_000, 100, 3_600_000),
      halfOpenProbes: int(env, 'BREAKER_HALF_OPEN_PROBES', 1, 1, 1_000),
      halfOpenSuccesses: int(env, 'BREAKER_HALF_OPEN_SUCCESSES', 2, 1, 1_000),
    },
  };
}
