import { eq } from 'drizzle-orm';
import type { Db } from './client.js';
import { shops } from './schema.js';

export type ShopRow = typeof shops.$inferSelect;
export type NewShop = typeof shops.$inferInsert;

export async function createShop(db: Db, shop: NewShop): Promise<ShopRow> {
  const [row] = await db.insert(shops).values(shop).returning();
  return row;
}

/** The shop holding an API key's public half. */
export async function findShopByKeyId(db: Db, keyId: string): Promise<ShopRow | undefined> {
  const [row] = await db.select().from(shops).where(eq(shops.apiKeyId, keyId));
  return row;
}
