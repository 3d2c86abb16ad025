import { context } from '@opentelemetry/api';
import type { Context } from '../context.js';
import type { ShopRow } from '../db/shops.js';
import { createGatherer, type GatherStats } from './gather.js';
import {
  intakeMany,
  type IntakeOptions,
  type IntakeRequest,
  type IntakeResult,
  type NewOrder,
} from './intake.js';

export interface IntakeBatcherOptions extends IntakeOptions {
  /** INTAKE_BATCH_MS */
  maxWaitMs: number;
  /** INTAKE_BATCH_SIZE */
  maxSize: number;
  /** Told the size of each batch handed to the database (a metric). */
  onBatch?(orders: number): void;
}

/** Group-commit intake for one process: what POST /v1/orders and each order of a batch go through. */
export interface IntakeBatcher {
  /**
   * Takes one order into the next batch; resolves with its own result (202 created / 200
   * repeat) once its batch committed, or rejects with its own AppError (409, 422) — or, when the
   * database is away, with the error that failed its batch (503).
   */
  submit(shop: ShopRow, idempotencyKey: string, body: NewOrder): Promise<IntakeResult>;
  /** Hands the open batch over and waits for every batch in flight (shutdown). */
  drain(): Promise<void>;
  /** Batches and orders so far (tests and diagnostics). */
  readonly stats: Readonly<GatherStats>;
}

/**
 * Concurrent intake requests gathered for at most `maxWaitMs` or `maxSize` orders (steps/gather.ts),
 * then taken in as one (steps/intake.ts intakeMany: one transaction, one addBulk per queue).
 * Batches do not wait for each other: while one commits, the next is gathered and may commit too.
 */
export function createIntakeBatcher(ctx: Context, options: IntakeBatcherOptions): IntakeBatcher {
  const gatherer = createGatherer(
    { maxWaitMs: options.maxWaitMs, maxSize: options.maxSize },
    (requests: IntakeRequest[]) => {
      options.onBatch?.(requests.length);
      return intakeMany(ctx, requests, options);
    },
  );
  return {
    // Each request's trace context rides with its order: the batch runs in one request's context.
    submit: (shop, idempotencyKey, body) =>
      gatherer.submit({ shop, idempotencyKey, body, trace: context.active() }),
    drain: () => gatherer.drain(),
    stats: gatherer.stats,
  };
}
