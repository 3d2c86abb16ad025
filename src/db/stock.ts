import { and, asc, eq, gt, inArray, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { allocations, inventory, warehouses } from './schema.js';
import type { OrderLine, ParcelPlan, WarehouseStock } from '../domain/allocation/strategy.js';
import type { AllocationState } from '../domain/parcels.js';

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

/** What each warehouse has available of the given SKUs. */
export async function availableStock(db: Db, skus: string[]): Promise<WarehouseStock[]> {
  return db
    .select({
      warehouseId: inventory.warehouseId,
      region: warehouses.region,
      sku: inventory.sku,
      available: sql<number>`${inventory.onHand} - ${inventory.reserved}`.mapWith(Number),
    })
    .from(inventory)
    .innerJoin(warehouses, eq(warehouses.id, inventory.warehouseId))
    .where(inArray(inventory.sku, skus));
}

/**
 * Reserves a plan with conditional increments (a line is reserved only while it is still
 * available, never read-then-write), in lock order. Throws StockTaken when a line is gone, which
 * rolls the caller's transaction back.
 */
export async function reservePlan(tx: Db, order: OrderRef, plan: ParcelPlan[]): Promise<void> {
  const lines = byLockOrder(plan.flatMap((p) => p.lines.map((l) => ({ warehouseId: p.warehouseId, ...l }))));
  for (const line of lines) {
    const updated = await tx
      .update(inventory)
      .set({ reserved: sql`${inventory.reserved} + ${line.quantity}`, updatedAt: new Date() })
      .where(
        and(
          eq(inventory.warehouseId, line.warehouseId),
          eq(inventory.sku, line.sku),
          sql`${inventory.onHand} - ${inventory.reserved} >= ${line.quantity}`,
        ),
      )
      .returning({ sku: inventory.sku });
    if (updated.length === 0) throw new StockTaken();
  }
  await tx.insert(allocations).values(
    lines.map((l: OrderLine & { warehouseId: string }) => ({
      orderId: order.id,
      attempt: order.attempt,
      warehouseId: l.warehouseId,
      sku: l.sku,
      quantity: l.quantity,
    })),
  );
}

/**
 * Settles every reservation the order's attempt still holds: `released` gives the stock back
 * (allocation's undo, on failure or cancel); `consumed` takes it off the shelf with its parcels.
 */
export async function settleReservations(tx: Db, order: OrderRef, to: Exclude<AllocationState, 'reserved'>) {
  const held = await tx
    .update(allocations)
    .set({ state: to })
    .where(
      and(
        eq(allocations.orderId, order.id),
        eq(allocations.attempt, order.attempt),
        eq(allocations.state, 'reserved'),
      ),
    )
    .returning();
  for (const a of byLockOrder(held)) {
    const onHand = to === 'consumed' ? sql`${inventory.onHand} - ${a.quantity}` : inventory.onHand;
    await tx
      .update(inventory)
      .set({ onHand, reserved: sql`${inventory.reserved} - ${a.quantity}`, updatedAt: new Date() })
      .where(and(eq(inventory.warehouseId, a.warehouseId), eq(inventory.sku, a.sku)));
  }
}

export async function reservationsOf(db: Db, order: OrderRef) {
  return db
    .select()
    .from(allocations)
    .where(and(eq(allocations.orderId, order.id), eq(allocations.attempt, order.attempt)))
    .orderBy(asc(allocations.id));
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

/** Sets on-hand stock; never below what is reserved. */
export async function setOnHand(
  db: Db,
  row: { warehouseId: string; sku: string; quantity: number },
): Promise<InventoryRow | 'below_reserved' | 'unknown_warehouse'> {
  try {
    const [updated] = await db
      .insert(inventory)
      .values({ warehouseId: row.warehouseId, sku: row.sku, onHand: row.quantity })
      .onConflictDoUpdate({
        target: [inventory.warehouseId, inventory.sku],
        set: { onHand: row.quantity, updatedAt: new Date() },
        setWhere: sql`${inventory.reserved} <= ${row.quantity}`,
      })
      .returning();
    return updated ?? 'below_reserved';
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
