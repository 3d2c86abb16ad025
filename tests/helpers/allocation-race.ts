/**
 * The "no overselling, ever" race (tests/e2e/allocation-race*.test.ts): many orders posted through
 * the HTTP API race for a few units of one SKU spread over three warehouses, while the inventory
 * table is sampled every ~20 ms, each sample read in ONE statement (one snapshot on PostgreSQL; on
 * PGlite transactions run one at a time, so a statement never sees half of one).
 *
 * Nothing here depends on which warehouse serves an order (the allocation strategy may change):
 * every stock figure is checked per warehouse against that warehouse's own allocations, and the
 * totals over warehouses against the units received.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { allocations, orderEvents, orders, shipments } from '../../src/db/schema.js';
import { createShop, createWarehouse, newKey, orderBody, setStock } from './fixtures.js';

export interface RaceWarehouse {
  id: string;
  region: string;
  units: number;
}

/** 40 + 35 + 25 = 100 units, in three regions. */
export const RACE_WAREHOUSES: RaceWarehouse[] = [
  { id: 'wh-race-a', region: 'shanghai-pudong', units: 40 },
  { id: 'wh-race-b', region: 'shanghai-minhang', units: 35 },
  { id: 'wh-race-c', region: 'wuhan-jiangan', units: 25 },
];

export const RACE_ORDERS = 1_000;
export const RACE_UNITS = RACE_WAREHOUSES.reduce((n, w) => n + w.units, 0);

export interface Sample {
  at: number;
  rows: {
    warehouseId: string;
    sku: string;
    onHand: number;
    reserved: number;
    /** Units of this row's allocations still `reserved` / `consumed` (shipped), same snapshot. */
    held: number;
    shipped: number;
  }[];
}

/** Every inventory row with its allocations' sums, in one statement. */
export async function sampleInventory(db: Db): Promise<Sample> {
  const sumOf = (state: string) =>
    sql<number>`(select coalesce(sum(a.quantity), 0) from allocations a
      where a.warehouse_id = i.warehouse_id and a.sku = i.sku and a.state = ${state})`.mapWith(Number);
  // Raw column names: drizzle leaves a single table's columns unqualified, which inside the
  // subqueries would name the allocations' own columns.
  const rows = await db
    .select({
      warehouseId: sql<string>`i.warehouse_id`,
      sku: sql<string>`i.sku`,
      onHand: sql<number>`i.on_hand`.mapWith(Number),
      reserved: sql<number>`i.reserved`.mapWith(Number),
      held: sumOf('reserved'),
      shipped: sumOf('consumed'),
    })
    .from(sql`inventory i`);
  return { at: Date.now(), rows };
}

/**
 * What must hold at every instant: onHand ≥ 0, 0 ≤ reserved ≤ onHand on every row; per warehouse
 * of a raced SKU, onHand + shipped = the units it received and reserved = its reserved allocations;
 * over the SKU, the same sums. Returns the broken rules (empty when all hold).
 */
export function violations(sample: Sample, received: Map<string, Map<string, number>>): string[] {
  const broken: string[] = [];
  for (const r of sample.rows) {
    const row = `${r.warehouseId}/${r.sku} ${JSON.stringify(r)}`;
    if (r.onHand < 0) broken.push(`onHand < 0: ${row}`);
    if (r.reserved < 0 || r.reserved > r.onHand) broken.push(`reserved outside 0..onHand: ${row}`);
  }
  for (const [sku, byWarehouse] of received) {
    const rows = sample.rows.filter((r) => r.sku === sku);
    for (const [warehouseId, units] of byWarehouse) {
      const r = rows.find((x) => x.warehouseId === warehouseId);
      if (!r) {
        broken.push(`${warehouseId}/${sku} missing`);
        continue;
      }
      if (r.onHand + r.shipped !== units)
        broken.push(`${warehouseId}/${sku}: onHand ${r.onHand} + shipped ${r.shipped} ≠ received ${units}`);
      if (r.reserved !== r.held)
        broken.push(`${warehouseId}/${sku}: reserved ${r.reserved} ≠ reserved allocations ${r.held}`);
    }
    const total = (f: (r: Sample['rows'][number]) => number) => rows.reduce((n, r) => n + f(r), 0);
    const units = [...byWarehouse.values()].reduce((n, u) => n + u, 0);
    if (total((r) => r.onHand + r.shipped) !== units)
      broken.push(`${sku}: Σ onHand + Σ shipped = ${total((r) => r.onHand + r.shipped)} ≠ received ${units}`);
    if (total((r) => r.reserved) !== total((r) => r.held))
      broken.push(
        `${sku}: Σ reserved ${total((r) => r.reserved)} ≠ Σ reserved allocations ${total((r) => r.held)}`,
      );
  }
  return broken;
}

/** Samples every `everyMs` until stopped; the invariants are checked on each sample as it comes. */
export function startSampler(db: Db, received: Map<string, Map<string, number>>, everyMs = 20) {
  const samples: Sample[] = [];
  const broken: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const sample = await sampleInventory(db).catch((error: Error) => {
        // The database went away under it (a test that timed out): stop sampling, say why.
        if (running) broken.push(`sampling failed: ${error.message}`);
        running = false;
        return undefined;
      });
      if (!sample) break;
      samples.push(sample);
      for (const v of violations(sample, received))
        if (broken.length < 20) broken.push(`#${samples.length}: ${v}`);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    samples,
    broken,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** The shop, the three warehouses and their stock of `sku`; returns the units received per warehouse. */
export async function seedRace(app: FastifyInstance, skus: string[]) {
  const shop = await createShop(app, { name: 'Race Shop', rateLimitPerMinute: 100_000 });
  const received = new Map<string, Map<string, number>>();
  for (const w of RACE_WAREHOUSES) await createWarehouse(app, w.id, w.region);
  for (const sku of skus) {
    const byWarehouse = new Map<string, number>();
    for (const w of RACE_WAREHOUSES) {
      await setStock(app, w.id, sku, w.units);
      byWarehouse.set(w.id, w.units);
    }
    received.set(sku, byWarehouse);
  }
  return { shop, received };
}

/** Posts the orders through POST /v1/orders/batch, 500 at a time; every one must answer 202. Returns ids in order. */
export async function postOrders(
  app: FastifyInstance,
  apiKey: string,
  lines: { sku: string; quantity: number }[],
): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < lines.length; start += 500) {
    const chunk = lines.slice(start, start + 500).map((line, k) =>
      orderBody({
        idempotencyKey: newKey(),
        items: [line],
        shippingAddress: {
          region: RACE_WAREHOUSES[(start + k) % RACE_WAREHOUSES.length].region,
          line1: `${start + k} Race Road`,
          city: 'Shanghai',
          postalCode: '200120',
          country: 'CN',
        },
      }),
    );
    const response = await app.inject({
      method: 'POST',
      url: '/v1/orders/batch',
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { orders: chunk },
    });
    expect(response.statusCode, response.body.slice(0, 500)).toBe(200);
    const results = response.json().results as { status: number; id?: string; error?: unknown }[];
    for (const r of results) expect(r.status, JSON.stringify(r.error)).toBe(202);
    ids.push(...results.map((r) => r.id!));
  }
  return ids;
}

/** Statuses an order of the race ends in: booked (stock consumed) or failed. */
const SETTLED = new Set(['dispatched', 'in_transit', 'delivered', 'failed', 'backordered']);

export async function waitUntilSettled(db: Db, ids: string[], timeoutMs: number, logs: () => string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await db.select({ status: orders.status }).from(orders).where(inArray(orders.id, ids));
    if (rows.length === ids.length && rows.every((r) => SETTLED.has(r.status))) return;
    if (Date.now() > deadline) {
      const counts = rows.reduce(
        (m: Record<string, number>, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }),
        {},
      );
      throw new Error(
        `orders not settled after ${timeoutMs} ms: ${JSON.stringify(counts)}; log:\n${logs().slice(-3000)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The end state, for orders `ids` wanting `lines[i]` of one SKU: nothing oversold, every unit
 * either shipped or still on the shelf, each booked order holding exactly its quantity (once),
 * each failed one out_of_stock and holding nothing. Returns the figures for the log line.
 */
export async function checkEndState(
  db: Db,
  sku: string,
  ids: string[],
  lines: { sku: string; quantity: number }[],
  received: Map<string, number>,
) {
  const wanted = new Map(ids.map((id, i) => [id, lines[i].quantity]));
  const rows = await db
    .select({
      id: orders.id,
      status: orders.status,
      failureReason: orders.failureReason,
      attempt: orders.attempt,
    })
    .from(orders)
    .where(inArray(orders.id, ids));
  const held = await db.select().from(allocations).where(inArray(allocations.orderId, ids));
  const allocatedEvents = await db
    .select({ orderId: orderEvents.orderId })
    .from(orderEvents)
    .where(and(inArray(orderEvents.orderId, ids), eq(orderEvents.status, 'allocated')));
  const parcels = await db.select().from(shipments).where(inArray(shipments.orderId, ids));
  const stock = (await sampleInventory(db)).rows.filter((r) => r.sku === sku);

  const booked = rows.filter((r) => r.status !== 'failed');
  const failed = rows.filter((r) => r.status === 'failed');
  expect(rows).toHaveLength(ids.length);
  for (const r of rows) expect(r.attempt).toBe(1); // nothing was retried
  expect(booked.every((r) => ['dispatched', 'in_transit', 'delivered'].includes(r.status))).toBe(true);
  expect(new Set(failed.map((r) => r.failureReason))).toEqual(
    failed.length ? new Set(['out_of_stock']) : new Set(),
  );

  // No reservation is left hanging, none was given back (no order failed after reserving).
  expect(held.filter((a) => a.state !== 'consumed')).toEqual([]);
  const shippedOf = new Map<string, number>();
  for (const a of held) shippedOf.set(a.orderId, (shippedOf.get(a.orderId) ?? 0) + a.quantity);
  // Each booked order got exactly its quantity, once (one `allocated` event); a failed one got nothing.
  for (const r of booked) expect(shippedOf.get(r.id), r.id).toBe(wanted.get(r.id));
  for (const r of failed) expect(shippedOf.get(r.id), r.id).toBeUndefined();
  const allocatedTimes = new Map<string, number>();
  for (const e of allocatedEvents) allocatedTimes.set(e.orderId, (allocatedTimes.get(e.orderId) ?? 0) + 1);
  for (const r of booked) expect(allocatedTimes.get(r.id), r.id).toBe(1);
  for (const r of failed) expect(allocatedTimes.get(r.id), r.id).toBeUndefined();
  // One parcel per warehouse an order ships from.
  for (const r of booked) {
    const from = new Set(held.filter((a) => a.orderId === r.id).map((a) => a.warehouseId));
    expect(
      parcels
        .filter((p) => p.orderId === r.id)
        .map((p) => p.warehouseId)
        .sort(),
      r.id,
    ).toEqual([...from].sort());
  }

  // Per warehouse and over all of them: what left each shelf is what its allocations shipped.
  const shippedUnits = held.reduce((n, a) => n + a.quantity, 0);
  for (const [warehouseId, units] of received) {
    const row = stock.find((s) => s.warehouseId === warehouseId)!;
    const fromHere = held.filter((a) => a.warehouseId === warehouseId).reduce((n, a) => n + a.quantity, 0);
    expect({ warehouseId, onHand: row.onHand, reserved: row.reserved }).toEqual({
      warehouseId,
      onHand: units - fromHere,
      reserved: 0,
    });
  }
  const units = [...received.values()].reduce((n, u) => n + u, 0);
  expect(shippedUnits + stock.reduce((n, s) => n + s.onHand, 0)).toBe(units);
  expect(shippedUnits).toBeLessThanOrEqual(units);
  // An order failed only if no warehouse had its quantity left: availability only falls during the
  // race (nothing is released, nothing restocked), so the end's is the lowest it has been.
  const mostLeft = Math.max(...stock.map((s) => s.onHand - s.reserved));
  for (const r of failed) expect(wanted.get(r.id)!, r.id).toBeGreaterThan(mostLeft);
  return {
    booked: booked.length,
    failed: failed.length,
    shippedUnits,
    left: units - shippedUnits,
    parcels: parcels.length,
  };
}
