import { and, asc, desc, eq, lt, or, sql } from 'drizzle-orm';
import { insertRows } from './bulk.js';
import type { Db } from './client.js';
import { reusable } from './reusable.js';
import { forgetClosure, recordClosure } from './kpis.js';
import { writeOutbox, writeOutboxMany, type OutboxRef } from './outbox.js';
import { feedback, orderEvents, orderItems, orders, shops } from './schema.js';
import { markCancelPending, parcelsOf } from './shipments.js';
import { settleReservations, reservationsOf } from './stock.js';
import { toldStatus } from '../domain/notify.js';
import {
  canTransition,
  EFFECTS,
  ForbiddenTransition,
  REPEATABLE,
  type OrderStatus,
  type TimelineStatus,
} from '../domain/status.js';

export type OrderRow = typeof orders.$inferSelect;
export type OrderItemRow = typeof orderItems.$inferSelect;
export type OrderEventRow = typeof orderEvents.$inferSelect;
/** An order with what telling its shop needs, read in one query. */
export type LoadedOrder = OrderRow & { webhookUrl: string | null };

/** What the outbox needs from the process: the base of tracking links. */
export interface OutboxEnv {
  publicUrl: string;
}

/** The statuses that close an order for the operators' scorecard (cancelled counts in none). */
const CLOSING: ReadonlySet<OrderStatus> = new Set(['delivered', 'failed']);

export interface Move {
  to: OrderStatus;
  at?: Date;
  detail?: string | null;
  /** Columns changed with the status (failureReason, deliveredAt, promisedBy…). */
  set?: Partial<Pick<OrderRow, 'failureReason' | 'deliveredAt' | 'promisedBy'>>;
}

export interface Moved {
  order: LoadedOrder;
  /** Outbox rows to enqueue after commit. */
  notifications: OutboxRef[];
  /** Parcels now `cancel_pending`: their cancellation jobs are enqueued after commit. */
  cancellations: string[];
}

/**
 * The one way an order's status changes. Refuses a move the machine forbids; moves with a
 * guarded update (`… AND status = <the status the caller read>`), so of two runs only one
 * moves; writes the event and the outbox rows; applies the move's effects (domain/status.ts
 * EFFECTS). All in the caller's transaction. Null when the order was no longer where the caller
 * read it: the stage already ran, or another one won. Entering delivered or failed also writes
 * the order's closure row (db/kpis.ts recordClosure), after the event whose recordedAt it keeps.
 */
export async function transition(
  tx: Db,
  order: LoadedOrder,
  move: Move,
  env: OutboxEnv,
): Promise<Moved | null> {
  if (!canTransition(order.status, move.to)) throw new ForbiddenTransition(order.status, move.to);
  const at = move.at ?? new Date();
  const guard = { id: order.id, attempt: order.attempt, from: order.status, to: move.to };
  const [row] =
    move.set && Object.keys(move.set).length > 0
      ? await tx
          .update(orders)
          .set({ status: move.to, updatedAt: new Date(), ...move.set })
          .where(
            and(eq(orders.id, order.id), eq(orders.attempt, order.attempt), eq(orders.status, order.status)),
          )
          .returning()
      : await moveStatus(tx, { ...guard, now: new Date().toISOString() });
  if (!row) return null;
  const moved: LoadedOrder = { ...row, webhookUrl: order.webhookUrl };
  const effects = EFFECTS[move.to] ?? {};
  if (effects.releaseStock) await settleReservations(tx, moved, 'released');
  if (effects.consumeStock) await settleReservations(tx, moved, 'consumed');
  const cancellations = effects.cancelBookings ? await markCancelPending(tx, moved) : [];
  const notifications = (await recordEvent(tx, moved, move.to, at, move.detail ?? null, env)) ?? [];
  // After the event: the closure's closedAt is that event's recordedAt.
  if (CLOSING.has(move.to)) await recordClosure(tx, moved.id);
  return { order: moved, notifications, cancellations };
}

/** transition()'s guarded update when only the status moves (most moves): built once. */
const moveStatus = reusable<
  { id: string; attempt: number; from: OrderStatus; to: OrderStatus; now: string },
  OrderRow[]
>((db, p) =>
  db
    .update(orders)
    .set({ status: sql`${p('to')}`, updatedAt: sql`${p('now')}::timestamptz` })
    .where(and(eq(orders.id, p('id')), eq(orders.attempt, p('attempt')), eq(orders.status, p('from'))))
    .returning(),
);

export interface Retry {
  at?: Date;
  /** What the `retried` event says (e.g. who asked). */
  detail?: string | null;
  /** The new attempt's promise; `initialPromisedBy` keeps the one given at intake. */
  promisedBy?: Date;
}

/**
 * The status machine's one exception (contract, "Order statuses"): an operator's retry of a
 * failed order. transition() never leaves `failed`; this starts a new attempt instead —
 * attempt + 1, back at `received`, `failureReason` and `deliveredAt` cleared — with a guarded
 * update (`… AND attempt = <read> AND status = 'failed'`), so of two retries only one starts an
 * attempt. It deletes the order's closure row (db/kpis.ts) and writes the new attempt's `retried` and `received` events and their outbox rows
 * (keys carry the attempt from the second on: domain/notify.ts messageKey). Nothing to undo: the
 * failed attempt released its reservations when it failed, and its events, parcels, carrier
 * calls and outbox rows stay as history (everything of an attempt is keyed by it). The caller
 * enqueues the new attempt's allocation after commit; a lost job is the reconciler's, which
 * finds `received` orders by (status, attempt). Null when the order was no longer the failed
 * attempt the caller read.
 */
export async function startRetry(
  tx: Db,
  order: LoadedOrder,
  env: OutboxEnv,
  retry: Retry = {},
): Promise<Moved | null> {
  if (order.status !== 'failed') return null;
  const at = retry.at ?? new Date();
  const [row] = await tx
    .update(orders)
    .set({
      attempt: order.attempt + 1,
      status: 'received',
      failureReason: null,
      deliveredAt: null,
      updatedAt: at,
      ...(retry.promisedBy ? { promisedBy: retry.promisedBy } : {}),
    })
    .where(and(eq(orders.id, order.id), eq(orders.attempt, order.attempt), eq(orders.status, 'failed')))
    .returning();
  if (!row) return null;
  const moved: LoadedOrder = { ...row, webhookUrl: order.webhookUrl };
  // In progress again: the failed attempt's closure goes, so the scorecard counts the order nowhere
  // until this attempt closes.
  await forgetClosure(tx, moved.id);
  // Same `at`, written in this order: the timeline (by at, then id) shows retried before received.
  const retried = (await recordEvent(tx, moved, 'retried', at, retry.detail ?? null, env)) ?? [];
  const received = (await recordEvent(tx, moved, 'received', at, null, env)) ?? [];
  return { order: moved, notifications: [...retried, ...received], cancellations: [] };
}

/**
 * Status changes an attempt may make more than once — a lockdown holds an order (`on_hold`), its
 * lift allocates it again (`allocated`), and another lockdown holds it again — each a new event
 * with the next seq. Only transition() writes them, after its guarded update moved the order, so
 * a stage that runs twice still writes one.
 */
const RECURRING: ReadonlySet<TimelineStatus> = new Set(['on_hold', 'allocated']);

/**
 * Appends one timeline event and its outbox rows. A status change happens once per attempt; a
 * repeatable event (out_for_delivery, failed_attempt) is new unless an earlier one of the same
 * parcel had the same `at`. Null for a repeat: nothing was written.
 */
export async function recordEvent(
  tx: Db,
  order: LoadedOrder,
  status: TimelineStatus,
  at: Date,
  detail: string | null,
  env: OutboxEnv,
): Promise<OutboxRef[] | null> {
  let seq = 1;
  if (REPEATABLE.has(status) || RECURRING.has(status)) {
    const earlier = await earlierEvents(tx, { orderId: order.id, attempt: order.attempt, status });
    if (REPEATABLE.has(status) && earlier.some((e) => e.at.getTime() === at.getTime() && e.detail === detail))
      return null;
    seq = earlier.reduce((max, e) => Math.max(max, e.seq), 0) + 1;
  }
  const inserted = await insertEvent(tx, {
    orderId: order.id,
    attempt: order.attempt,
    status,
    seq,
    at: at.toISOString(),
    detail,
  });
  if (inserted.length === 0) return null;
  return writeOutbox(tx, order, toldStatus(status, seq), at, env);
}

const earlierEvents = reusable<
  { orderId: string; attempt: number; status: TimelineStatus },
  { seq: number; at: Date; detail: string | null }[]
>((db, p) =>
  db
    .select({ seq: orderEvents.seq, at: orderEvents.at, detail: orderEvents.detail })
    .from(orderEvents)
    .where(
      and(
        eq(orderEvents.orderId, p('orderId')),
        eq(orderEvents.attempt, p('attempt')),
        eq(orderEvents.status, p('status')),
      ),
    ),
);

const insertEvent = reusable<
  {
    orderId: string;
    attempt: number;
    status: TimelineStatus;
    seq: number;
    at: string;
    detail: string | null;
  },
  { id: number }[]
>((db, p) =>
  db
    .insert(orderEvents)
    .values({
      orderId: p('orderId'),
      attempt: p('attempt'),
      status: p('status'),
      seq: p('seq'),
      at: sql`${p('at')}::timestamptz`,
      detail: p('detail'),
    })
    .onConflictDoNothing()
    .returning({ id: orderEvents.id }),
);

/** One event for recordEvents. */
export interface EventToRecord {
  order: LoadedOrder;
  status: TimelineStatus;
  at: Date;
  detail: string | null;
}

/**
 * recordEvent for many orders in one go (a group-committed intake): the same rows, the same
 * rule, one INSERT for the events and one for their outbox rows. A status that happens once per
 * attempt (`received`, …) is written as recordEvent writes it, seq 1, nothing for an event already
 * there; repeatable and recurring ones, which read the earlier events, go through recordEvent one
 * by one. Returns the outbox rows of each event written, by order id (none: a repeat).
 */
export async function recordEvents(
  tx: Db,
  events: EventToRecord[],
  env: OutboxEnv,
): Promise<Map<string, OutboxRef[]>> {
  const written = new Map<string, OutboxRef[]>();
  const once = events.filter((e) => !REPEATABLE.has(e.status) && !RECURRING.has(e.status));
  for (const e of events.filter((e) => !once.includes(e))) {
    const rows = await recordEvent(tx, e.order, e.status, e.at, e.detail, env);
    if (rows) written.set(e.order.id, [...(written.get(e.order.id) ?? []), ...rows]);
  }
  if (once.length === 0) return written;
  const inserted = await insertRows(
    tx,
    orderEvents,
    once.map(({ order, status, at, detail }) => ({
      orderId: order.id,
      attempt: order.attempt,
      status,
      seq: 1,
      at,
      detail,
    })),
    { onConflict: sql`do nothing`, returning: true },
  );
  const isNew = new Set(inserted.map((r) => `${r.orderId}:${r.attempt}:${r.status}`));
  const fresh = once.filter((e) => isNew.has(`${e.order.id}:${e.order.attempt}:${e.status}`));
  const outbox = await writeOutboxMany(
    tx,
    fresh.map((e) => ({ order: e.order, status: toldStatus(e.status, 1), at: e.at })),
    env,
  );
  for (const [orderId, rows] of outbox) written.set(orderId, [...(written.get(orderId) ?? []), ...rows]);
  return written;
}

const loadedColumns = { order: orders, webhookUrl: shops.webhookUrl };

function loaded(row: { order: OrderRow; webhookUrl: string | null }): LoadedOrder {
  return { ...row.order, webhookUrl: row.webhookUrl };
}

type LoadedRow = { order: OrderRow; webhookUrl: string | null };

const orderQuery = reusable<{ id: string }, LoadedRow[]>((db, p) =>
  db
    .select(loadedColumns)
    .from(orders)
    .innerJoin(shops, eq(shops.id, orders.shopId))
    .where(eq(orders.id, p('id'))),
);

const lockedOrderQuery = reusable<{ id: string }, LoadedRow[]>((db, p) =>
  db
    .select(loadedColumns)
    .from(orders)
    .innerJoin(shops, eq(shops.id, orders.shopId))
    .where(eq(orders.id, p('id')))
    .for('update', { of: orders }),
);

export async function findOrder(db: Db, id: string): Promise<LoadedOrder | undefined> {
  const [row] = await orderQuery(db, { id });
  return row && loaded(row);
}

/** The order row locked until the transaction ends: two carrier events of one order apply in turn. */
export async function lockOrder(tx: Db, id: string): Promise<LoadedOrder | undefined> {
  const [row] = await lockedOrderQuery(tx, { id });
  return row && loaded(row);
}

export async function findShopOrder(db: Db, shopId: string, id: string): Promise<LoadedOrder | undefined> {
  const [row] = await db
    .select(loadedColumns)
    .from(orders)
    .innerJoin(shops, eq(shops.id, orders.shopId))
    .where(and(eq(orders.id, id), eq(orders.shopId, shopId)));
  return row && loaded(row);
}

export async function findByTrackingToken(db: Db, token: string): Promise<OrderRow | undefined> {
  const [order] = await db.select().from(orders).where(eq(orders.trackingToken, token));
  return order;
}

const itemsQuery = reusable<{ orderId: string }, OrderItemRow[]>((db, p) =>
  db
    .select()
    .from(orderItems)
    .where(eq(orderItems.orderId, p('orderId')))
    .orderBy(asc(orderItems.line)),
);

export async function orderItemsOf(db: Db, orderId: string): Promise<OrderItemRow[]> {
  return itemsQuery(db, { orderId });
}

/** Everything GET /v1/orders/{id} and the tracking page show. */
export async function orderDetails(db: Db, order: OrderRow) {
  const [items, allocated, parcels, events] = await Promise.all([
    orderItemsOf(db, order.id),
    reservationsOf(db, order),
    parcelsOf(db, order),
    db
      .select()
      .from(orderEvents)
      .where(eq(orderEvents.orderId, order.id))
      .orderBy(asc(orderEvents.at), asc(orderEvents.id)),
  ]);
  return { items, allocations: allocated.filter((a) => a.state !== 'released'), shipments: parcels, events };
}

export interface ListCursor {
  createdAt: Date;
  id: string;
}

/** A shop's orders, newest first, keyset-paginated by (createdAt, id); one row more than asked. */
export async function listShopOrders(
  db: Db,
  shopId: string,
  opts: { status?: OrderStatus; limit: number; cursor?: ListCursor },
): Promise<OrderRow[]> {
  const conditions = [eq(orders.shopId, shopId)];
  if (opts.status) conditions.push(eq(orders.status, opts.status));
  if (opts.cursor) {
    const { createdAt, id } = opts.cursor;
    conditions.push(
      or(lt(orders.createdAt, createdAt), and(eq(orders.createdAt, createdAt), lt(orders.id, id)))!,
    );
  }
  return db
    .select()
    .from(orders)
    .where(and(...conditions))
    .orderBy(desc(orders.createdAt), desc(orders.id))
    .limit(opts.limit + 1);
}

export type FeedbackRow = typeof feedback.$inferSelect;

/** The order's one feedback; null when it already has one. */
export async function addFeedback(
  db: Db,
  row: { orderId: string; score: number; comment: string | null },
): Promise<FeedbackRow | null> {
  const [created] = await db
    .insert(feedback)
    .values({ ...row, createdAt: new Date() })
    .onConflictDoNothing()
    .returning();
  return created ?? null;
}
