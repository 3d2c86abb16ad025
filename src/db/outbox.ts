import { randomUUID } from 'node:crypto';
import { and, asc, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { insertRows } from './bulk.js';
import type { Db } from './client.js';
import { notifications, orders, shops } from './schema.js';
import { outboxMessages, type Channel, type NotifiedOrder, type OutboxMessage } from '../domain/notify.js';

export type NotificationRow = typeof notifications.$inferSelect;

/** An outbox row written by a commit: what its job needs (the channel picks the queue). */
export interface OutboxRef {
  notificationId: string;
  channel: Channel;
}

/** One told status of one order, for the outbox. */
export interface OutboxEvent<O> {
  order: O;
  status: string;
  at: Date;
}

/**
 * Writes the outbox rows of one timeline event, rendered whole (recipient, text, dedupe key,
 * webhook body), in the caller's transaction. The unique (order, attempt, status, channel) key
 * makes a stage that runs twice write nothing new. Returns the rows to enqueue after commit.
 */
export async function writeOutbox(
  tx: Db,
  order: NotifiedOrder & { webhookUrl: string | null },
  status: string,
  at: Date,
  env: { publicUrl: string },
): Promise<OutboxRef[]> {
  return (await writeOutboxMany(tx, [{ order, status, at }], env)).get(order.id) ?? [];
}

/**
 * writeOutbox for the events of many orders (a group-committed intake), in as few statements as
 * the parameter limit allows. Returns each order's rows to enqueue, by order id.
 */
export async function writeOutboxMany(
  tx: Db,
  events: OutboxEvent<NotifiedOrder & { webhookUrl: string | null }>[],
  env: { publicUrl: string },
): Promise<Map<string, OutboxRef[]>> {
  return insertOutboxRowsMany(
    tx,
    events.map(({ order, status, at }) => ({
      order,
      status,
      at,
      messages: outboxMessages(order, status, at, { publicUrl: env.publicUrl, webhookUrl: order.webhookUrl }),
    })),
  );
}

/**
 * Inserts rendered messages as outbox rows of one told status; a row already there for its
 * (order, attempt, status, channel) is left alone. Returns the rows written, to enqueue after commit.
 */
export async function insertOutboxRows(
  tx: Db,
  order: { id: string; attempt: number },
  status: string,
  at: Date,
  messages: { channel: Channel; body: OutboxMessage }[],
): Promise<OutboxRef[]> {
  return (await insertOutboxRowsMany(tx, [{ order, status, at, messages }])).get(order.id) ?? [];
}

/** insertOutboxRows for many told statuses at once; the rows written, by order id. */
export async function insertOutboxRowsMany(
  tx: Db,
  events: (OutboxEvent<{ id: string; attempt: number }> & {
    messages: { channel: Channel; body: OutboxMessage }[];
  })[],
): Promise<Map<string, OutboxRef[]>> {
  const values = events.flatMap(({ order, status, at, messages }) =>
    messages.map(({ channel, body }) => ({
      id: randomUUID(),
      orderId: order.id,
      attempt: order.attempt,
      status,
      channel,
      body,
      at,
    })),
  );
  const written = new Map<string, OutboxRef[]>();
  // One json parameter however many rows (db/bulk.ts): no 65,535-parameter limit to split at.
  const rows = await insertRows(tx, notifications, values, { onConflict: sql`do nothing`, returning: true });
  for (const r of rows) {
    const list = written.get(r.orderId) ?? [];
    list.push({ notificationId: r.id, channel: r.channel });
    written.set(r.orderId, list);
  }
  return written;
}

/**
 * Claims a pending row for one send: no other run (a lapsed job lock, the reconciler after a
 * flush) sends it until the lease passes. Null when it is sent, given up, or claimed by another.
 */
export async function claimNotification(
  db: Db,
  id: string,
  leaseMs: number,
): Promise<NotificationRow | null> {
  const [row] = await db
    .update(notifications)
    .set({
      leaseUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
      tries: sql`${notifications.tries} + 1`,
    })
    .where(
      and(
        eq(notifications.id, id),
        eq(notifications.state, 'pending'),
        or(isNull(notifications.leaseUntil), lt(notifications.leaseUntil, sql`now()`)),
      ),
    )
    .returning();
  return row ?? null;
}

export async function markSent(db: Db, id: string): Promise<void> {
  await markSentMany(db, [id]);
}

/**
 * Claims several rows in one statement (each as claimNotification would); answers the rows it
 * claimed, by id. An id given twice is claimed once.
 */
export async function claimNotifications(
  db: Db,
  ids: string[],
  leaseMs: number,
): Promise<Map<string, NotificationRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .update(notifications)
    .set({
      leaseUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
      tries: sql`${notifications.tries} + 1`,
    })
    .where(
      and(
        inArray(notifications.id, [...new Set(ids)]),
        eq(notifications.state, 'pending'),
        or(isNull(notifications.leaseUntil), lt(notifications.leaseUntil, sql`now()`)),
      ),
    )
    .returning();
  return new Map(rows.map((row) => [row.id, row]));
}

/** Marks several rows sent in one statement. */
export async function markSentMany(db: Db, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(notifications)
    .set({ state: 'sent', sentAt: new Date(), lastError: null, leaseUntil: null })
    .where(inArray(notifications.id, ids));
}

/** A failed send: back to pending for the next try (lease released), or given up for good. */
export async function markFailed(db: Db, id: string, error: string, final: boolean): Promise<void> {
  await db
    .update(notifications)
    .set({ state: final ? 'failed' : 'pending', lastError: error.slice(0, 500), leaseUntil: null })
    .where(eq(notifications.id, id));
}

/** The signing secret of the shop an order belongs to (webhooks only). */
export async function webhookSecretOf(db: Db, orderId: string): Promise<string | undefined> {
  const [row] = await db
    .select({ secret: shops.webhookSecret })
    .from(orders)
    .innerJoin(shops, eq(shops.id, orders.shopId))
    .where(eq(orders.id, orderId));
  return row?.secret;
}

export interface OutboxPosition {
  createdAt: Date;
  id: string;
}

/** Pending rows older than `before`, oldest first after a keyset position, with their order's priority. */
export async function pendingNotifications(
  db: Db,
  opts: { before: Date; after?: OutboxPosition; limit: number },
) {
  const conditions = [eq(notifications.state, 'pending'), lt(notifications.createdAt, opts.before)];
  if (opts.after) {
    const { createdAt, id } = opts.after;
    conditions.push(
      or(
        gt(notifications.createdAt, createdAt),
        and(eq(notifications.createdAt, createdAt), gt(notifications.id, id)),
      )!,
    );
  }
  return db
    .select({ id: notifications.id, createdAt: notifications.createdAt, priority: orders.priority })
    .from(notifications)
    .innerJoin(orders, eq(orders.id, notifications.orderId))
    .where(and(...conditions))
    .orderBy(asc(notifications.createdAt), asc(notifications.id))
    .limit(opts.limit);
}
