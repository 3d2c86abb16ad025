import { and, asc, eq, gt, inArray, isNotNull, isNull, lte, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import type { LoadedOrder } from './orders.js';
import { allocations, orders, regionLockdowns, shops } from './schema.js';

export type LockdownRow = typeof regionLockdowns.$inferSelect;

/** A lockdown is in force while it has no `until`, or its `until` is still ahead. */
const inForce = (at: Date) => or(isNull(regionLockdowns.until), gt(regionLockdowns.until, at));

/**
 * Locks a region down, or replaces its lockdown (reason and `until`). `createdAt` (the `since`
 * the API shows) stays that of the lockdown being replaced while it is still in force: the region
 * has been locked since then; a lockdown whose `until` already passed starts afresh.
 */
export async function putLockdown(
  db: Db,
  row: { region: string; reason: string; until: Date | null },
  at = new Date(),
): Promise<LockdownRow> {
  const [saved] = await db
    .insert(regionLockdowns)
    .values({ ...row, createdAt: at, updatedAt: at })
    .onConflictDoUpdate({
      target: regionLockdowns.region,
      set: {
        reason: row.reason,
        until: row.until,
        updatedAt: at,
        createdAt: sql`case when ${regionLockdowns.until} is not null and ${regionLockdowns.until} <= ${at.toISOString()}::timestamptz
          then ${at.toISOString()}::timestamptz else ${regionLockdowns.createdAt} end`,
      },
    })
    .returning();
  return saved;
}

/**
 * Lifts a region's lockdown; the row lifted, or undefined when none was in force (a row whose
 * `until` already passed is removed too, but lifted nothing).
 */
export async function liftLockdown(
  db: Db,
  region: string,
  at = new Date(),
): Promise<LockdownRow | undefined> {
  const [lifted] = await db.delete(regionLockdowns).where(eq(regionLockdowns.region, region)).returning();
  return lifted && (lifted.until === null || lifted.until > at) ? lifted : undefined;
}

/** Every lockdown in force at `at`, oldest first. */
export async function activeLockdowns(db: Db, at = new Date()): Promise<LockdownRow[]> {
  return db
    .select()
    .from(regionLockdowns)
    .where(inForce(at))
    .orderBy(asc(regionLockdowns.createdAt), asc(regionLockdowns.region));
}

/** The region's lockdown in force at `at`, if any. */
export async function activeLockdown(
  db: Db,
  region: string,
  at = new Date(),
): Promise<LockdownRow | undefined> {
  const [row] = await db
    .select()
    .from(regionLockdowns)
    .where(and(eq(regionLockdowns.region, region), inForce(at)));
  return row;
}

/**
 * The region's lockdown in force, read with a share lock for the rest of the transaction: a lift
 * (a DELETE of the row) waits for a hold being written under it, so the resume that follows the
 * lift sees that hold. Outside a transaction the lock ends with the statement.
 */
export async function lockdownForHold(
  tx: Db,
  region: string,
  at = new Date(),
): Promise<LockdownRow | undefined> {
  const [row] = await tx
    .select()
    .from(regionLockdowns)
    .where(and(eq(regionLockdowns.region, region), inForce(at)))
    .for('share');
  return row;
}

/** Removes the lockdowns whose `until` has passed; their regions. */
export async function liftExpired(db: Db, at = new Date()): Promise<string[]> {
  const rows = await db
    .delete(regionLockdowns)
    .where(and(isNotNull(regionLockdowns.until), lte(regionLockdowns.until, at)))
    .returning({ region: regionLockdowns.region });
  return rows.map((r) => r.region);
}

/**
 * Regions with orders `on_hold` but no lockdown in force: their orders are due to resume (a resume
 * cut short by a crash, an enqueue Redis refused, a hold written as the lockdown lifted).
 */
export async function regionsWithStrandedHolds(db: Db, at = new Date()): Promise<string[]> {
  const rows = await db
    .selectDistinct({ region: orders.region })
    .from(orders)
    .where(
      and(
        eq(orders.status, 'on_hold'),
        sql`not exists (select 1 from ${regionLockdowns} where ${regionLockdowns.region} = ${orders.region}
          and (${regionLockdowns.until} is null or ${regionLockdowns.until} > ${at.toISOString()}::timestamptz))`,
      ),
    );
  return rows.map((r) => r.region);
}

/** Whether the order's current attempt holds stock (allocations still `reserved`). */
export async function holdsReservation(db: Db, order: { id: string; attempt: number }): Promise<boolean> {
  const [row] = await db
    .select({ id: allocations.id })
    .from(allocations)
    .where(
      and(
        eq(allocations.orderId, order.id),
        eq(allocations.attempt, order.attempt),
        eq(allocations.state, 'reserved'),
      ),
    )
    .limit(1);
  return row !== undefined;
}

/** Resume order: essential, express, standard, then oldest first (then id, for a total order). */
const classRank = sql<number>`(case ${orders.priority} when 'essential' then 1 when 'express' then 2 else 3 end)`;
/** created_at as exact text (microseconds, which a JS Date drops), for the keyset cursor. */
const exactCreatedAt = sql<string>`to_char(${orders.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export interface HoldCursor {
  rank: number;
  at: string;
  id: string;
}

export type HeldOrder = LoadedOrder & { reserved: boolean; cursor: HoldCursor };

/** One page of the region's `on_hold` orders in resume order, after `cursor`. */
export async function heldOrders(
  db: Db,
  region: string,
  opts: { after: HoldCursor | null; limit: number },
): Promise<HeldOrder[]> {
  const rows = await db
    .select({
      order: orders,
      webhookUrl: shops.webhookUrl,
      rank: classRank.mapWith(Number),
      at: exactCreatedAt,
      reserved: sql<boolean>`exists (select 1 from ${allocations} where ${allocations.orderId} = ${orders.id}
        and ${allocations.attempt} = ${orders.attempt} and ${allocations.state} = 'reserved')`,
    })
    .from(orders)
    .innerJoin(shops, eq(shops.id, orders.shopId))
    .where(
      and(
        eq(orders.status, 'on_hold'),
        eq(orders.region, region),
        opts.after
          ? sql`(${classRank}, ${orders.createdAt}, ${orders.id}) >
              (${opts.after.rank}, ${opts.after.at}::timestamptz, ${opts.after.id}::uuid)`
          : undefined,
      ),
    )
    .orderBy(classRank, asc(orders.createdAt), asc(orders.id))
    .limit(opts.limit);
  return rows.map((r) => ({
    ...r.order,
    webhookUrl: r.webhookUrl,
    reserved: r.reserved === true || (r.reserved as unknown) === 't',
    cursor: { rank: r.rank, at: r.at, id: r.order.id },
  }));
}

/** Of these orders, the ids still `on_hold` holding no reservation (due an allocation job). */
export async function stillHeldWithoutStock(db: Db, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .select({ id: orders.id })
    .from(orders)
    .where(
      and(
        inArray(orders.id, ids),
        eq(orders.status, 'on_hold'),
        sql`not exists (select 1 from ${allocations} where ${allocations.orderId} = ${orders.id}
          and ${allocations.attempt} = ${orders.attempt} and ${allocations.state} = 'reserved')`,
      ),
    );
  return new Set(rows.map((r) => r.id));
}
