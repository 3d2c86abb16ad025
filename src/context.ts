import type { Telemetry } from 'bullmq';
import type { Coordination } from './queues/coordination.js';
import type { Config } from './config.js';
import type { Database, Db } from './db/client.js';
import type { BreakerStore } from './integrations/carriers/breaker-store.js';
import type { CarrierAdapter } from './integrations/carriers/types.js';
import type { NotificationProvider } from './integrations/notify/types.js';
import type { Logger } from './logger.js';
import type { CarrierCache } from './queues/carrier-changes.js';
import type { Queues } from './queues/producer.js';

/** What every stage and route needs, built once per process (see app.ts). */
export interface Context {
  config: Config;
  log: Logger;
  database: Database;
  db: Db;
  /** Rate-limit logs, breakers, locks, fair-queueing tags and announcements shared by every process. */
  coord: Coordination;
  queues: Queues;
  carriers: CarrierAdapter;
  /** Each carrier's circuit breaker, shared by every process (in ctx.coord). */
  breakers: BreakerStore;
  notifier: NotificationProvider;
  /** The carriers as this process last read them (intake's promises); unset: read each time. */
  carrierCache?: CarrierCache;
  /** BullMQ's telemetry (src/telemetry.ts) for every Queue and Worker; unset: tracing is off. */
  telemetry?: Telemetry;
  /** Counts committed status changes (surgeline_orders_total); set once metrics exist. */
  statusChanges?: { inc(labels: { status: string }): void };
}
