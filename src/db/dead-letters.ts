import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { carrierAttempts, orderEvents, orders, shipments } from './schema.js';
import type { AttemptOutcome } from '../domain/parcels.js';
import type { FailureReason } from '../domain/status.js';

/**
 * The dead-letter view: orders that failed at dispatch (`carrier_failed`, `no_carrier`) and wait
 * for an operator. An operator's retry moves the order on (db/orders.ts startRetry), which takes
 * it off the list; its old attempt's parcels and calls stay as history.
 */

/** Dead-letter failure reasons, as written in orders_dead_letters_idx (db/schema.ts). */
export const DEAD_LETTER_REASONS = [
  'carrier_failed',
  'no_carrier',
] as const satisfies readonly FailureReason[];

/**
 * The index's predicate, word for word: written as literals (not bind parameters) so the planner
 * can prove the partial index applies whatever plan it picks.
 */
const IS_DEAD_LETTER = sql.raw(`status = 'failed' AND failure_reason IN ('carrier_failed', 'no_carrier')`);

export interface DeadLetterPosition {
  updatedAt: Date;
  id: string;
}

export interface DeadLetterRow {
  id: string;
  shopId: string;
  attempt: number;
  failureReason: FailureReason;
  /** When the order moved to `failed` (nothing changes a failed order's row afterwards). */
  updatedAt: Date;
}

/** Dead letters, newest failure first, keyset-paginated by (updatedAt, id); one row more than asked. */
export async function listDeadLetters(
  db: Db,
  opts: { limit: number; before?: DeadLetterPosition },
): Promise<DeadLetterRow[]> {
  const before = opts.before
    ? sql`(${orders.updatedAt}, ${orders.id}) < (${opts.before.updatedAt.toISOString()}::timestamptz, ${opts.before.id}::uuid)`
    : undefined;
  const rows = await db
    .select({
      id: orders.id,
      shopId: orders.shopId,
      attempt: orders.attempt,
      failureReason: orders.failureReason,
      updatedAt: orders.updatedAt,
    })
    .from(orders)
    .where(and(IS_DEAD_LETTER, before))
    .orderBy(sql`${orders.updatedAt} DESC`, sql`${orders.id} DESC`)
    .limit(opts.limit + 1);
  return rows as DeadLetterRow[];
}

export interface DeadLetterAttempt {
  orderId: string;
  carrierId: string;
  at: Date;
  outcome: AttemptOutcome;
  detail: string | null;
}

/**
 * For a page of dead letters: the `at` of each one's `failed` event and the booking calls made for
 * the parcels of its current attempt, oldest first. Two queries for the whole page.
 */
export async function deadLetterDetails(
  db: Db,
  letters: Pick<DeadLetterRow, 'id' | 'attempt'>[],
): Promise<{ failedAt: Map<string, Date>; attempts: Map<string, DeadLetterAttempt[]> }> {
  const failedAt = new Map<string, Date>();
  const attempts = new Map<string, DeadLetterAttempt[]>();
  if (letters.length === 0) return { failedAt, attempts };
  const ids = letters.map((l) => l.id);
  const current = new Map(letters.map((l) => [l.id, l.attempt]));

  const [events, calls] = await Promise.all([
    db
      .select({ orderId: orderEvents.orderId, attempt: orderEvents.attempt, at: orderEvents.at })
      .from(orderEvents)
      .where(and(inArray(orderEvents.orderId, ids), eq(orderEvents.status, 'failed'))),
    db
      .select({
        orderId: carrierAttempts.orderId,
        attempt: shipments.attempt,
        carrierId: carrierAttempts.carrierId,
        at: carrierAttempts.at,
        outcome: carrierAttempts.outcome,
        detail: carrierAttempts.detail,
      })
      .from(carrierAttempts)
      .innerJoin(shipments, eq(shipments.id, carrierAttempts.shipmentId))
      .where(inArray(carrierAttempts.orderId, ids))
      .orderBy(asc(carrierAttempts.at), asc(carrierAttempts.id)),
  ]);

  for (const e of events) if (current.get(e.orderId) === e.attempt) failedAt.set(e.orderId, e.at);
  for (const c of calls) {
    if (current.get(c.orderId) !== c.attempt) continue; // an earlier attempt's parcel
    const list = attempts.get(c.orderId) ?? [];
    list.push({ orderId: c.orderId, carrierId: c.carrierId, at: c.at, outcome: c.outcome, detail: c.detail });
    attempts.set(c.orderId, list);
  }
  return { failedAt, attempts };
}
