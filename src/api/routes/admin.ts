import { randomBytes, randomUUID } from 'node:crypto';
import { and, asc, desc, eq, gt, or, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.js';
import { carrierAttempts, carriers, inventory, shops, warehouses } from '../../db/schema.js';
import { AppError, notFound } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { newShopKey } from '../plugins/auth.js';
import {
  CarrierBody,
  CarrierPatch,
  IdParams,
  InventoryBody,
  InventoryQuery,
  PaginationQuery,
  ShopBody,
  WarehouseBody,
} from '../schemas.js';

type CarrierRow = typeof carriers.$inferSelect;
type InventoryRow = typeof inventory.$inferSelect;

const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';

function pgCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } };
  return e?.cause?.code ?? e?.code;
}

function inventoryView(row: InventoryRow) {
  return {
    warehouseId: row.warehouseId,
    sku: row.sku,
    onHand: row.onHand,
    reserved: row.reserved,
    available: Math.max(0, row.onHand - row.reserved),
    // Restocks (inbound stock) arrive with the allocation capability; nothing is inbound yet.
    inbound: 0,
    inboundEta: null,
  };
}

/** Share of the carrier's last 100 booking calls answered 201; null when it has none. */
async function successRate(ctx: Context, carrierId: string): Promise<number | null> {
  const recent = await ctx.db
    .select({ outcome: carrierAttempts.outcome, httpStatus: carrierAttempts.httpStatus })
    .from(carrierAttempts)
    .where(eq(carrierAttempts.carrierId, carrierId))
    .orderBy(desc(carrierAttempts.id))
    .limit(100);
  if (recent.length === 0) return null;
  return recent.filter((a) => a.httpStatus === 201).length / recent.length;
}

async function carrierView(ctx: Context, c: CarrierRow) {
  return {
    id: c.id,
    name: c.name,
    kind: c.kind,
    baseUrl: c.baseUrl,
    regions: c.regions,
    rank: c.rank,
    rateLimitPerSecond: c.rateLimitPerSecond,
    transitHours: c.transitHours,
    enabled: c.enabled,
    // The shared circuit breaker comes with the logistics capability; until then it never opens.
    breaker: { state: 'closed' as const, since: null },
    successRate: await successRate(ctx, c.id),
  };
}

export async function adminRoutes(app: FastifyInstance, { ctx }: { ctx: Context }) {
  const tags = ['operators'];

  app.post<{ Body: ShopBody }>(
    '/v1/admin/shops',
    { schema: { tags, summary: 'Create a shop', body: ShopBody } },
    async (request, reply) => {
      const key = newShopKey();
      const webhookSecret = `whsec_${randomBytes(24).toString('base64url')}`;
      const [shop] = await ctx.db
        .insert(shops)
        .values({
          id: randomUUID(),
          name: request.body.name,
          apiKeyId: key.keyId,
          apiKeyHash: key.hash,
          webhookUrl: request.body.webhookUrl ?? null,
          webhookSecret,
          rateLimitPerMinute: request.body.rateLimitPerMinute ?? 600,
        })
        .returning();
      return reply.code(201).send({
        id: shop.id,
        name: shop.name,
        webhookUrl: shop.webhookUrl,
        rateLimitPerMinute: shop.rateLimitPerMinute,
        apiKey: key.apiKey,
        webhookSecret,
      });
    },
  );

  app.post<{ Body: WarehouseBody }>(
    '/v1/admin/warehouses',
    { schema: { tags, summary: 'Create a warehouse', body: WarehouseBody } },
    async (request, reply) => {
      const { id, name, region, supplierId } = request.body;
      const [row] = await ctx.db
        .insert(warehouses)
        .values({
          id: id ?? `wh-${randomBytes(6).toString('hex')}`,
          name,
          region,
          supplierId: supplierId ?? null,
        })
        .onConflictDoNothing()
        .returning();
      if (!row) throw new AppError(409, 'already_exists', `Warehouse ${id} already exists.`);
      return reply
        .code(201)
        .send({ id: row.id, name: row.name, region: row.region, supplierId: row.supplierId });
    },
  );

  app.put<{ Body: InventoryBody }>(
    '/v1/admin/inventory',
    { schema: { tags, summary: 'Set on-hand stock of a SKU in a warehouse', body: InventoryBody } },
    async (request) => {
      const { warehouseId, sku, quantity } = request.body;
      let rows: InventoryRow[];
      try {
        rows = await ctx.db
          .insert(inventory)
          .values({ warehouseId, sku, onHand: quantity })
          .onConflictDoUpdate({
            target: [inventory.warehouseId, inventory.sku],
            set: { onHand: quantity, updatedAt: new Date() },
            setWhere: sql`${inventory.reserved} <= ${quantity}`,
          })
          .returning();
      } catch (error) {
        if (pgCode(error) === FOREIGN_KEY_VIOLATION) {
          throw new AppError(422, 'unknown_warehouse', `Warehouse ${warehouseId} does not exist.`);
        }
        throw error;
      }
      if (rows.length === 0) {
        throw new AppError(
          409,
          'below_reserved',
          `On-hand stock can't go below what is reserved for orders.`,
        );
      }
      return inventoryView(rows[0]);
    },
  );

  app.get<{ Querystring: { sku?: string; warehouseId?: string; limit: number; cursor?: string } }>(
    '/v1/admin/inventory',
    { schema: { tags, summary: 'Stock levels', querystring: InventoryQuery } },
    async (request) => {
      const { sku, warehouseId, limit, cursor } = request.query;
      const position = decodeCursor(cursor, ['warehouseId', 'sku'] as const);
      const conditions = [];
      if (sku) conditions.push(eq(inventory.sku, sku));
      if (warehouseId) conditions.push(eq(inventory.warehouseId, warehouseId));
      if (position) {
        conditions.push(
          or(
            gt(inventory.warehouseId, position.warehouseId),
            and(eq(inventory.warehouseId, position.warehouseId), gt(inventory.sku, position.sku)),
          )!,
        );
      }
      const rows = await ctx.db
        .select()
        .from(inventory)
        .where(and(...conditions))
        .orderBy(asc(inventory.warehouseId), asc(inventory.sku))
        .limit(limit + 1);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map(inventoryView),
        nextCursor:
          rows.length > limit && last ? encodeCursor({ warehouseId: last.warehouseId, sku: last.sku }) : null,
      };
    },
  );

  app.post<{ Body: CarrierBody }>(
    '/v1/admin/carriers',
    { schema: { tags, summary: 'Register a carrier (lower rank is tried first)', body: CarrierBody } },
    async (request, reply) => {
      const b = request.body;
      const [row] = await ctx.db
        .insert(carriers)
        .values({
          id: b.id,
          name: b.name,
          kind: b.kind,
          baseUrl: b.baseUrl.replace(/\/$/, ''),
          apiKey: b.apiKey ?? null,
          webhookSecret: b.webhookSecret,
          regions: b.regions as string[],
          rank: b.rank,
          rateLimitPerSecond: b.rateLimitPerSecond ?? null,
          transitHours: b.transitHours ?? null,
        })
        .onConflictDoNothing()
        .returning();
      if (!row) throw new AppError(409, 'already_exists', `Carrier ${b.id} already exists.`);
      return reply.code(201).send(await carrierView(ctx, row));
    },
  );

  app.patch<{ Params: { id: string }; Body: CarrierPatch }>(
    '/v1/admin/carriers/:id',
    {
      schema: {
        tags,
        summary: 'Change a carrier, e.g. { "enabled": false }',
        params: IdParams,
        body: CarrierPatch,
      },
    },
    async (request) => {
      const patch = { ...request.body, regions: request.body.regions as string[] | undefined };
      if (patch.baseUrl) patch.baseUrl = patch.baseUrl.replace(/\/$/, '');
      const [row] = await ctx.db
        .update(carriers)
        .set({ ...patch, updatedAt: new Date() })
        .where(eq(carriers.id, request.params.id))
        .returning();
      if (!row) throw notFound('carrier');
      return carrierView(ctx, row);
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/admin/carriers',
    {
      schema: { tags, summary: 'Carriers with breaker state and success rate', querystring: PaginationQuery },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const position = decodeCursor(cursor, ['id'] as const);
      const rows = await ctx.db
        .select()
        .from(carriers)
        .where(position ? gt(carriers.id, position.id) : undefined)
        .orderBy(asc(carriers.id))
        .limit(limit + 1);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: await Promise.all(page.map((c) => carrierView(ctx, c))),
        nextCursor: rows.length > limit && last ? encodeCursor({ id: last.id }) : null,
      };
    },
  );
}
