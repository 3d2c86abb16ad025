import { and, asc, eq, gt, inArray, isNull, ne, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { insertRows } from './bulk.js';
import { reusable } from './reusable.js';
import { allocations, inventory, orderItems, orders, restocks, suppliers, warehouses } from './schema.js';
import type { InboundStock, OrderLine, ParcelPlan, WarehouseStock } from '../domain/allocation/strategy.js';
import type { AllocationState } from '../domain/parcels.js';
import type { Priority } from '../domain/priority.js';

export type InventoryRow = typeof inventory.$inferSelect;
export type WarehouseRow = typeof warehouses.$inferSelect;

/** Another order took the stock between our read and our reservation. */
export class StockTaken extends Error {}

interface OrderRef {
  id: string;
  attempt: number;
}

/**
 * Stock rows are always locked in one order — (warehouse, SKU) — wherever they are touched, so
 * two transactions never wait on each other in a cycle (PostgreSQL's 40P01).
 */
function byLockOrder<T extends { warehouseId: string; sku: string }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => a.warehouseId.localeCompare(b.warehouseId) || a.sku.localeCompare(b.sku));
}

/**
 * What each warehouse has available of the given SKUs. A warehouse whose supplier is unavailable
 * reads 0 (it counts as empty); one with no supplier, or a supplier id that names none, reads its
 * stock.
 */
export async function availableStock(db: Db, skus: string[]): Promise<WarehouseStock[]> {
  if (skus.length === 0) return [];
  return db
    .select({
      warehouseId: inventory.warehouseId,
      region: warehouses.region,
      sku: inventory.sku,
      available: sql<number>`case when ${suppliers.available} is false then 0
        else greatest(${inventory.onHand} - ${inventory.reserved}, 0) end`.mapWith(Number),
    })
    .from(inventory)
    .innerJoin(warehouses, eq(warehouses.id, inventory.warehouseId))
    .leftJoin(suppliers, eq(suppliers.id, warehouses.supplierId))
    .where(inArray(inventory.sku, skus));
}

/** Unreceived restocks of the given SKUs, earliest ETA first. */
export async function inboundStock(db: Db, skus: string[]): Promise<InboundStock[]> {
  if (skus.length === 0) return [];
  return db
    .select({
      warehouseId: restocks.warehouseId,
      sku: restocks.sku,
      quantity: restocks.quantity,
      eta: restocks.eta,
    })
    .from(restocks)
    .where(and(isNull(restocks.receivedAt), inArray(restocks.sku, [...new Set(skus)])))
    .orderBy(asc(restocks.eta), asc(restocks.id));
}

/** A priority class as a number, essential first (the order in which backorders are served). */
const classRank = (priority: unknown) =>
  sql`(case ${priority} when 'essential' then 1 when 'express' then 2 else 3 end)`;

/**
 * Units per SKU (of `skus`) that backordered orders AHEAD of `order` wait for: those of a higher
 * priority class, or of the same class placed before it — (created_at, id) smaller; the order
 * itself excluded. They come first when stock arrives, so this order can't count on those units.
 * The order's created_at is read from its row (microseconds, which a JS Date drops); the given
 * one stands in only for an order not stored. SKUs nobody ahead waits for are not in the map.
 */
export async function backorderedDemand(
  db: Db,
  order: { id: string; priority: Priority; createdAt: Date },
  skus: string[],
): Promise<Map<string, number>> {
  const wanted = [...new Set(skus)];
  if (wanted.length === 0) return new Map();
  const own = classRank(sql`${order.priority}::text`);
  const theirs = classRank(orders.priority);
  const createdAt = sql`coalesce((select self.created_at from orders self where self.id = ${order.id}::uuid),
    ${order.createdAt.toISOString()}::timestamptz)`;
  const rows = await db
    .select({ sku: orderItems.sku, units: sql<number>`sum(${orderItems.quantity})`.mapWith(Number) })
    .from(orderItems)
    .innerJoin(orders, eq(orders.id, orderItems.orderId))
    .where(
      and(
        eq(orders.status, 'backordered'),
        sql`${orders.id} <> ${order.id}::uuid`,
        inArray(orderItems.sku, wanted),
        sql`(${theirs} < ${own} or (${theirs} = ${own}
          and (${orders.createdAt}, ${orders.id}) < (${createdAt}, ${order.id}::uuid)))`,
      ),
    )
    .groupBy(orderItems.sku);
  return new Map(rows.map((r) => [r.sku, r.units]));
}

/**
 * Reserves a plan with conditional increments (a line is reserved only while it is still
 * available, never read-then-write), in lock order. Throws StockTaken when a line is gone, which
 * rolls the caller's transaction back.
 */
export async function reservePlan(tx: Db, order: OrderRef, plan: ParcelPlan[]): Promise<void> {
  const lines = byLockOrder(plan.flatMap((p) => p.lines.map((l) => ({ warehouseId: p.warehouseId, ...l }))));
  for (const line of lines) {
    const updated = await reserveLine(tx, {
      warehouseId: line.warehouseId,
      sku: line.sku,
      quantity: line.quantity,
      now: new Date().toISOString(),
    });
    if (updated.length === 0) throw new StockTaken();
  }
  await insertRows(
    tx,
    allocations,
    lines.map((l: OrderLine & { warehouseId: string }) => ({
      orderId: order.id,
      attempt: order.attempt,
      warehouseId: l.warehouseId,
      sku: l.sku,
      quantity: l.quantity,
    })),
  );
}

type StockLine = { warehouseId: string; sku: string; quantity: number; now: string };

const reserveLine = reusable<StockLine, { sku: string }[]>((db, p) =>
  db
    .update(inventory)
    .set({
      reserved: sql`${inventory.reserved} + ${p('quantity')}::int`,
      updatedAt: sql`${p('now')}::timestamptz`,
    })
    .where(
      and(
        eq(inventory.warehouseId, p('warehouseId')),
        eq(inventory.sku, p('sku')),
        sql`${inventory.onHand} - ${inventory.reserved} >= ${p('quantity')}::int`,
      ),
    )
    .returning({ sku: inventory.sku }),
);

/** A reservation settled: `taken` units leave on-hand (consumed: the quantity; released: 0). */
const settleLine = reusable<StockLine & { taken: number }, unknown>((db, p) =>
  db
    .update(inventory)
    .set({
      onHand: sql`${inventory.onHand} - ${p('taken')}::int`,
      reserved: sql`${inventory.reserved} - ${p('quantity')}::int`,
      updatedAt: sql`${p('now')}::timestamptz`,
    })
    .where(and(eq(inventory.warehouseId, p('warehouseId')), eq(inventory.sku, p('sku')))),
);

const settleAllocations = reusable<
  { orderId: string; attempt: number; to: Exclude<AllocationState, 'reserved'> },
  (typeof allocations.$inferSelect)[]
>((db, p) =>
  db
    .update(allocations)
    .set({ state: sql`${p('to')}` })
    .where(
      and(
        eq(allocations.orderId, p('orderId')),
        eq(allocations.attempt, p('attempt')),
        eq(allocations.state, 'reserved'),
      ),
    )
    .returning(),
);

const reservationsQuery = reusable<{ orderId: string; attempt: number }, (typeof allocations.$inferSelect)[]>(
  (db, p) =>
    db
      .select()
      .from(allocations)
      .where(and(eq(allocations.orderId, p('orderId')), eq(allocations.attempt, p('attempt'))))
      .orderBy(asc(allocations.id)),
);

/**
 * Settles every reservation the order's attempt still holds: `released` gives the stock back
 * (allocation's undo, on failure or cancel); `consumed` takes it off the shelf with its parcels.
 */
export async function settleReservations(tx: Db, order: OrderRef, to: Exclude<AllocationState, 'reserved'>) {
  const held = await settleAllocations(tx, { orderId: order.id, attempt: order.attempt, to });
  for (const a of byLockOrder(held)) {
    await settleLine(tx, {
      warehouseId: a.warehouseId,
      sku: a.sku,
      quantity: a.quantity,
      taken: to === 'consumed' ? a.quantity : 0,
      now: new Date().toISOString(),
    });
  }
}

export async function reservationsOf(db: Db, order: OrderRef) {
  return reservationsQuery(db, { orderId: order.id, attempt: order.attempt });
}

/** The SKUs of `skus` that no warehouse lists (a SKU is known once any warehouse lists it, even at 0). */
export async function unknownSkus(db: Db, skus: string[]): Promise<Set<string>> {
  const wanted = [...new Set(skus)];
  const known = await db
    .selectDistinct({ sku: inventory.sku })
    .from(inventory)
    .where(inArray(inventory.sku, wanted));
  const knownSet = new Set(known.map((k) => k.sku));
  return new Set(wanted.filter((s) => !knownSet.has(s)));
}

const FOREIGN_KEY_VIOLATION = '23503';

function pgCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } };
  return e?.cause?.code ?? e?.code;
}

/**
 * Sets on-hand stock; never below what is reserved. Answers the row with the on-hand it had
 * before (0 for a row it creates), so the caller knows whether stock arrived.
 */
export async function setOnHand(
  db: Db,
  row: { warehouseId: string; sku: string; quantity: number },
): Promise<(InventoryRow & { previousOnHand: number }) | 'below_reserved' | 'unknown_warehouse'> {
  try {
    return await db.transaction(async (tx) => {
      const [before] = await tx
        .select({ onHand: inventory.onHand })
        .from(inventory)
        .where(and(eq(inventory.warehouseId, row.warehouseId), eq(inventory.sku, row.sku)))
        .for('update');
      const [updated] = await tx
        .insert(inventory)
        .values({ warehouseId: row.warehouseId, sku: row.sku, onHand: row.quantity })
        .onConflictDoUpdate({
          target: [inventory.warehouseId, inventory.sku],
          set: { onHand: row.quantity, updatedAt: new Date() },
          setWhere: sql`${inventory.reserved} <= ${row.quantity}`,
        })
        .returning();
      return updated ? { ...updated, previousOnHand: before?.onHand ?? 0 } : 'below_reserved';
    });
  } catch (error) {
    if (pgCode(error) === FOREIGN_KEY_VIOLATION) return 'unknown_warehouse';
    throw error;
  }
}

export interface InventoryPosition {
  warehouseId: string;
  sku: string;
}

/** Stock rows by (warehouse, SKU), keyset-paginated; one row more than asked. */
export async function listInventory(
  db: Db,
  opts: { sku?: string; warehouseId?: string; limit: number; after?: InventoryPosition },
): Promise<InventoryRow[]> {
  const conditions = [];
  if (opts.sku) conditions.push(eq(inventory.sku, opts.sku));
  if (opts.warehouseId) conditions.push(eq(inventory.warehouseId, opts.warehouseId));
  if (opts.after) {
    const { warehouseId, sku } = opts.after;
    conditions.push(
      or(
        gt(inventory.warehouseId, warehouseId),
        and(eq(inventory.warehouseId, warehouseId), gt(inventory.sku, sku)),
      )!,
    );
  }
  return db
    .select()
    .from(inventory)
    .where(and(...conditions))
    .orderBy(asc(inventory.warehouseId), asc(inventory.sku))
    .limit(opts.limit + 1);
}

export async function createWarehouse(
  db: Db,
  row: { id: string; name: string; region: string; supplierId: string | null },
): Promise<WarehouseRow | undefined> {
  const [created] = await db.insert(warehouses).values(row).onConflictDoNothing().returning();
  return created;
}

/** What the inventory view adds to a stock row: what is inbound, and the last hour's demand. */
export interface StockFigures {
  /** Units in unreceived restocks. */
  inbound: number;
  /** The earliest ETA of those restocks, or null. */
  inboundEta: Date | null;
  /** Units of the row allocated in the demand window (reservations not given back). */
  unitsLastHour: number;
}

export const stockKey = (row: InventoryPosition) => `${row.warehouseId}\u0000${row.sku}`;

const NO_FIGURES: StockFigures = { inbound: 0, inboundEta: null, unitsLastHour: 0 };

/** `(warehouse_id, sku) in (…)` for exactly these rows. */
function positionsIn(warehouseId: unknown, sku: unknown, rows: InventoryPosition[]) {
  const tuples = rows.map((r) => sql`(${r.warehouseId}, ${r.sku})`);
  return sql`(${warehouseId}, ${sku}) in (${sql.join(tuples, sql`, `)})`;
}

/**
 * Inbound units, earliest inbound ETA and units allocated since `demandSince`, for the given
 * rows only (two grouped aggregates over the rows' restocks and recent allocations, by index),
 * keyed by stockKey. A row with none of either reads 0 / null / 0.
 */
export async function stockFigures(
  db: Db,
  rows: InventoryPosition[],
  demandSince: Date,
): Promise<(row: InventoryPosition) => StockFigures> {
  if (rows.length === 0) return () => NO_FIGURES;
  const skus = [...new Set(rows.map((r) => r.sku))];
  const [inbound, demand] = await Promise.all([
    db
      .select({
        warehouseId: restocks.warehouseId,
        sku: restocks.sku,
        units: sql<number>`sum(${restocks.quantity})`.mapWith(Number),
        eta: sql<Date>`min(${restocks.eta})`.mapWith(restocks.eta),
      })
      .from(restocks)
      .where(
        and(
          isNull(restocks.receivedAt),
          inArray(restocks.sku, skus),
          positionsIn(restocks.warehouseId, restocks.sku, rows),
        ),
      )
      .groupBy(restocks.warehouseId, restocks.sku),
    db
      .select({
        warehouseId: allocations.warehouseId,
        sku: allocations.sku,
        units: sql<number>`sum(${allocations.quantity})`.mapWith(Number),
      })
      .from(allocations)
      .where(
        and(
          gt(allocations.createdAt, demandSince),
          ne(allocations.state, 'released'),
          positionsIn(allocations.warehouseId, allocations.sku, rows),
        ),
      )
      .groupBy(allocations.warehouseId, allocations.sku),
  ]);
  const figures = new Map<string, StockFigures>();
  const at = (row: InventoryPosition) => {
    const key = stockKey(row);
    let f = figures.get(key);
    if (!f) figures.set(key, (f = { ...NO_FIGURES }));
    return f;
  };
  for (const r of inbound) Object.assign(at(r), { inbound: r.units, inboundEta: r.eta });
  for (const r of demand) at(r).unitsLastHour = r.units;
  return (row) => figures.get(stockKey(row)) ?? NO_FIGURES;
}

/** A stock row with demand in the window, as the risk check reads it. */
export interface StockUnderDemand {
  warehouseId: string;
  sku: string;
  available: number;
  unitsLastHour: number;
  inboundEta: Date | null;
}

/**
 * Every stock row with units allocated since `demandSince` (rows without demand have no cover, so
 * can't be at risk): one query, driven by the recent allocations (allocations_recent_idx), with
 * each row's earliest inbound ETA.
 */
export async function stockUnderDemand(db: Db, demandSince: Date): Promise<StockUnderDemand[]> {
  const demand = db.$with('demand').as(
    db
      .select({
        warehouseId: allocations.warehouseId,
        sku: allocations.sku,
        units: sql<number>`sum(${allocations.quantity})`.as('units'),
      })
      .from(allocations)
      .where(and(gt(allocations.createdAt, demandSince), ne(allocations.state, 'released')))
      .groupBy(allocations.warehouseId, allocations.sku),
  );
  return db
    .with(demand)
    .select({
      warehouseId: inventory.warehouseId,
      sku: inventory.sku,
      available: sql<number>`greatest(${inventory.onHand} - ${inventory.reserved}, 0)`.mapWith(Number),
      unitsLastHour: sql<number>`${demand.units}`.mapWith(Number),
      inboundEta: sql<Date | null>`(select min(r.eta) from restocks r where r.received_at is null
        and r.warehouse_id = ${inventory.warehouseId} and r.sku = ${inventory.sku})`.mapWith(restocks.eta),
    })
    .from(demand)
    .innerJoin(inventory, and(eq(inventory.warehouseId, demand.warehouseId), eq(inventory.sku, demand.sku)));
}
