import { asc, eq, gt } from 'drizzle-orm';
import type { Db } from './client.js';
import { suppliers } from './schema.js';

export type SupplierRow = typeof suppliers.$inferSelect;

/** A new supplier, available; undefined when the id is taken. */
export async function createSupplier(
  db: Db,
  row: { id: string; name: string },
): Promise<SupplierRow | undefined> {
  const [created] = await db.insert(suppliers).values(row).onConflictDoNothing().returning();
  return created;
}

export async function supplierExists(db: Db, id: string): Promise<boolean> {
  const [row] = await db.select({ id: suppliers.id }).from(suppliers).where(eq(suppliers.id, id));
  return row !== undefined;
}

/**
 * Marks a supplier available or not; answers the row and whether it was available before (read
 * under the row's lock, so of two concurrent PATCHes only one sees the change), or undefined for
 * an unknown id.
 */
export async function setSupplierAvailable(
  db: Db,
  id: string,
  available: boolean,
): Promise<{ row: SupplierRow; wasAvailable: boolean } | undefined> {
  return db.transaction(async (tx) => {
    const [before] = await tx
      .select({ available: suppliers.available })
      .from(suppliers)
      .where(eq(suppliers.id, id))
      .for('update');
    if (!before) return undefined;
    const [row] = await tx
      .update(suppliers)
      .set({ available, updatedAt: new Date() })
      .where(eq(suppliers.id, id))
      .returning();
    return { row, wasAvailable: before.available };
  });
}

/** Suppliers by id, keyset-paginated; one row more than asked. */
export async function listSuppliers(
  db: Db,
  opts: { limit: number; afterId?: string },
): Promise<SupplierRow[]> {
  return db
    .select()
    .from(suppliers)
    .where(opts.afterId ? gt(suppliers.id, opts.afterId) : undefined)
    .orderBy(asc(suppliers.id))
    .limit(opts.limit + 1);
}
