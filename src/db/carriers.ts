import { asc, desc, eq, gt } from 'drizzle-orm';
import type { Db } from './client.js';
import { carrierAttempts, carriers } from './schema.js';

export type CarrierRow = typeof carriers.$inferSelect;
export type NewCarrier = typeof carriers.$inferInsert;
export type CarrierPatch = Partial<Omit<NewCarrier, 'id' | 'createdAt' | 'updatedAt'>>;

export async function allCarriers(db: Db): Promise<CarrierRow[]> {
  return db.select().from(carriers);
}

export async function findCarrier(db: Db, id: string): Promise<CarrierRow | undefined> {
  const [row] = await db.select().from(carriers).where(eq(carriers.id, id));
  return row;
}

export async function createCarrier(db: Db, carrier: NewCarrier): Promise<CarrierRow | undefined> {
  const [row] = await db.insert(carriers).values(carrier).onConflictDoNothing().returning();
  return row;
}

export async function patchCarrier(db: Db, id: string, patch: CarrierPatch): Promise<CarrierRow | undefined> {
  const [row] = await db
    .update(carriers)
    .set({ ...patch, updatedAt: new Date() })
    .where(eq(carriers.id, id))
    .returning();
  return row;
}

/** Carriers by id, keyset-paginated; one row more than asked. */
export async function listCarriers(db: Db, opts: { limit: number; afterId?: string }): Promise<CarrierRow[]> {
  return db
    .select()
    .from(carriers)
    .where(opts.afterId ? gt(carriers.id, opts.afterId) : undefined)
    .orderBy(asc(carriers.id))
    .limit(opts.limit + 1);
}

const RECENT_CALLS = 100;

/**
 * Share of each carrier's last 100 booking calls that booked (200 or 201); null when it has
 * none. Calls still in flight are not counted.
 */
export async function successRates(db: Db, carrierIds: string[]): Promise<Map<string, number | null>> {
  // One index range scan per carrier (carrier_id, id), all sent at once rather than in turn.
  const recent = await Promise.all(
    carrierIds.map((id) =>
      db
        .select({ outcome: carrierAttempts.outcome })
        .from(carrierAttempts)
        .where(eq(carrierAttempts.carrierId, id))
        .orderBy(desc(carrierAttempts.id))
        .limit(RECENT_CALLS),
    ),
  );
  return new Map(
    carrierIds.map((id, i) => {
      const answered = recent[i].filter((a) => a.outcome !== 'pending');
      const booked = answered.filter((a) => a.outcome === 'booked').length;
      return [id, answered.length ? booked / answered.length : null];
    }),
  );
}
