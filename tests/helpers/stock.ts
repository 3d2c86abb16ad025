import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/client.js';
import { allocations, orderItems, orders } from '../../src/db/schema.js';
import type { AllocationState } from '../../src/domain/parcels.js';
import type { Priority } from '../../src/domain/priority.js';
import type { OrderStatus } from '../../src/domain/status.js';

/**
 * An order row written straight to the database (no intake, no job), for fixtures whose status,
 * priority and creation time a test chooses.
 */
export async function insertOrderRow(
  db: Db,
  row: {
    shopId: string;
    status: OrderStatus;
    priority?: Priority;
    createdAt?: Date;
    id?: string;
    items?: { sku: string; quantity: number }[];
  },
): Promise<{ id: string; priority: Priority; createdAt: Date }> {
  const id = row.id ?? randomUUID();
  const createdAt = row.createdAt ?? new Date();
  const priority = row.priority ?? 'standard';
  await db.insert(orders).values({
    id,
    shopId: row.shopId,
    idempotencyKey: `fixture-${id}`,
    requestHash: 'fixture',
    externalId: `F-${id.slice(0, 8)}`,
    status: row.status,
    priority,
    customer: { name: 'Fixture' },
    shippingAddress: {
      region: 'shanghai-pudong',
      line1: '1 Century Avenue',
      city: 'Shanghai',
      postalCode: '200120',
      country: 'CN',
    },
    region: 'shanghai-pudong',
    locale: 'en',
    notifyChannels: [],
    trackingToken: randomBytes(18).toString('base64url'),
    promisedBy: new Date(createdAt.getTime() + 48 * 3600_000),
    initialPromisedBy: new Date(createdAt.getTime() + 48 * 3600_000),
    createdAt,
  });
  const items = row.items ?? [];
  if (items.length > 0)
    await db.insert(orderItems).values(items.map((item, line) => ({ orderId: id, line, ...item })));
  return { id, priority, createdAt };
}

/**
 * A reservation record taken `minutesAgo` minutes ago (the demand that gives a stock row its
 * cover). Written under attempt 99 and `consumed` by default, so nothing settles it and it moves
 * no stock: it only counts as demand.
 */
export async function insertAllocation(
  db: Db,
  row: {
    orderId: string;
    warehouseId: string;
    sku: string;
    quantity: number;
    minutesAgo: number;
    state?: AllocationState;
  },
): Promise<void> {
  await db.insert(allocations).values({
    orderId: row.orderId,
    attempt: 99,
    warehouseId: row.warehouseId,
    sku: row.sku,
    quantity: row.quantity,
    state: row.state ?? 'consumed',
    createdAt: new Date(Date.now() - row.minutesAgo * 60_000),
  });
}
