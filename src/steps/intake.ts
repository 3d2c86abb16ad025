import { randomBytes, randomUUID } from 'node:crypto';
import type { Context } from '../context.js';
import { findByIdempotencyKey, insertOrder } from '../db/intake.js';
import type { OrderRow } from '../db/orders.js';
import type { Address, Customer } from '../db/schema.js';
import type { ShopRow } from '../db/shops.js';
import { unknownSkus } from '../db/stock.js';
import { requestHash } from '../domain/canonical.js';
import { CUSTOMER_CHANNELS } from '../domain/notify.js';
import type { Priority } from '../domain/priority.js';
import { restockEtaFor } from './allocate.js';
import { promiseFor } from './promise.js';
import { AppError } from '../errors.js';
import { enqueueAfterCommit, enqueueNotifications } from '../queues/enqueue.js';

/** The body of POST /v1/orders, after schema validation. */
export interface NewOrder {
  externalId: string;
  priority?: Priority;
  customer: Customer;
  shippingAddress: Address;
  items: { sku: string; quantity: number }[];
  contactless?: boolean;
  locale?: 'zh-CN' | 'en';
  notify?: { channels?: ('sms' | 'email')[] };
}

export interface IntakeResult {
  /** true: this request created the order (202); false: a repeat of an earlier one (200). */
  created: boolean;
  order: OrderRow;
}

function repeat(order: OrderRow, hash: string): IntakeResult {
  if (order.requestHash !== hash) {
    throw new AppError(
      409,
      'idempotency_conflict',
      'This Idempotency-Key was already used with a different request body.',
    );
  }
  return { created: false, order };
}

/**
 * Intake: commit the order (database first: an answered order is never lost with Redis), then
 * enqueue its allocation and its `received` messages. A failed enqueue is the reconciler's to
 * redo. `deadline` bounds the enqueueing of a whole request (a batch).
 */
export async function intake(
  ctx: Context,
  shop: ShopRow,
  idempotencyKey: string,
  body: NewOrder,
  deadline?: number,
): Promise<IntakeResult> {
  const hash = requestHash(body);
  const existing = await findByIdempotencyKey(ctx.db, shop.id, idempotencyKey);
  if (existing) return repeat(existing, hash);

  const skus = body.items.map((i) => i.sku);
  const unknown = await unknownSkus(ctx.db, skus);
  if (unknown.size > 0) {
    throw new AppError(422, 'unknown_sku', `Unknown SKU: ${[...unknown].join(', ')}.`, {
      errors: skus.flatMap((sku, i) =>
        unknown.has(sku) ? [{ path: `body/items/${i}/sku`, message: `unknown SKU "${sku}"` }] : [],
      ),
    });
  }

  const region = body.shippingAddress.region;
  const now = new Date(); // set here, not by the database, so cursors keep millisecond precision
  const id = randomUUID();
  const priority = body.priority ?? 'standard';
  // An order only a restock can fill is promised from that restock's ETA, not from now.
  const restockEta = await restockEtaFor(ctx, { id, priority, createdAt: now, region }, body.items);
  const promisedBy = await promiseFor(ctx, { now, priority, region, restockEta });
  const created = await insertOrder(
    ctx.db,
    {
      id,
      shopId: shop.id,
      idempotencyKey,
      requestHash: hash,
      externalId: body.externalId,
      status: 'received',
      priority,
      customer: body.customer,
      shippingAddress: body.shippingAddress,
      region,
      contactless: body.contactless ?? false,
      locale: body.locale ?? 'zh-CN',
      notifyChannels: body.notify?.channels ?? [...CUSTOMER_CHANNELS],
      trackingToken: randomBytes(18).toString('base64url'),
      promisedBy,
      initialPromisedBy: promisedBy,
      createdAt: now,
      updatedAt: now,
    },
    body.items,
    shop.webhookUrl,
    ctx.config,
  );
  if (!created) {
    // A concurrent request with this key committed first: answer its order.
    const winner = await findByIdempotencyKey(ctx.db, shop.id, idempotencyKey);
    if (!winner) throw new Error('idempotency key conflict without a committed order');
    return repeat(winner, hash);
  }
  const { order } = created;
  ctx.statusChanges?.inc({ status: 'received' });
  await enqueueAfterCommit(
    ctx,
    'allocation',
    () => ctx.queues.add('allocation', { orderId: order.id, attempt: order.attempt }, order.priority),
    deadline,
  );
  await enqueueNotifications(ctx, created.notifications, order.priority, deadline);
  return { created: true, order };
}
