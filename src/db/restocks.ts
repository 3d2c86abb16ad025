import { randomUUID } from 'node:crypto';
import { and, asc, eq, gt, isNotNull, isNull, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { inventory, restocks } from './schema.js';

export type RestockRow = typeof restocks.$inferSelect;

const FOREIGN_KEY_VIOLATION = '23503';

function pgCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } };
  return e?.cause?.code ?? e?.code;
}

/**
 * Records inbound stock. The (warehouse, SKU) stock row is created at on-hand 0 when missing, in
 * the same transaction, so the SKU is known (orders for it are taken, and can be backordered).
 */
export async function createRestock(
  db: Db,
  row: { warehouseId: string; sku: string; quantity: number; eta: Date },
): Promise<RestockRow | 'unknown_warehouse'> {
  try {
    return await db.transaction(async (tx) => {
      await tx
        .insert(inventory)
        .values({ warehouseId: row.warehouseId, sku: row.sku, onHand: 0 })
        .onConflictDoNothing();
      const [created] = await tx
        .insert(restocks)
        .values({ id: randomUUID(), ...row })
        .returning();
      return created;
    });
  } catch (error) {
    if (pgCode(error) === FOREIGN_KEY_VIOLATION) return 'unknown_warehouse';
    throw error;
  }
}

/**
 * Receives a restock: marks it received and adds its quantity to on-hand, in one transaction.
 * The guarded update (`… AND received_at IS NULL`) lets only one of two concurrent receipts
 * through; the other answers `already_received`.
 */
export async function receiveRestock(
  db: Db,
  id: string,
  at: Date,
): Promise<RestockRow | 'already_received' | 'not_found'> {
  return db.transaction(async (tx) => {
    const [received] = await tx
      .update(restocks)
      .set({ receivedAt: at })
      .where(and(eq(restocks.id, id), isNull(restocks.receivedAt)))
      .returning();
    if (!received) {
      const [exists] = await tx.select({ id: restocks.id }).from(restocks).where(eq(restocks.id, id));
      return exists ? 'already_received' : 'not_found';
    }
    await tx
      .insert(inventory)
      .values({ warehouseId: received.warehouseId, sku: received.sku, onHand: received.quantity })
      .onConflictDoUpdate({
        target: [inventory.warehouseId, inventory.sku],
        set: { onHand: sql`${inventory.onHand} + ${received.quantity}`, updatedAt: at },
      });
    return received;
  });
}

export interface RestockPosition {
  eta: Date;
  id: string;
}

/** Restocks, earliest ETA first (then id), keyset-paginated; one row more than asked. */
export async function listRestocks(
  db: Db,
  opts: { warehouseId?: string; sku?: string; received?: boolean; limit: number; after?: RestockPosition },
): Promise<RestockRow[]> {
  const conditions = [];
  if (opts.warehouseId) conditions.push(eq(restocks.warehouseId, opts.warehouseId));
  if (opts.sku) conditions.push(eq(restocks.sku, opts.sku));
  if (opts.received !== undefined)
    conditions.push(opts.received ? isNotNull(restocks.receivedAt) : isNull(restocks.receivedAt));
  if (opts.after) {
    const { eta, id } = opts.after;
    conditions.push(or(gt(restocks.eta, eta), and(eq(restocks.eta, eta), gt(restocks.id, id)))!);
  }
  return db
    .select()
    .from(restocks)
    .where(and(...conditions))
    .orderBy(asc(restocks.eta), asc(restocks.id))
    .limit(opts.limit + 1);
}
