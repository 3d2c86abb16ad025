import { randomBytes, randomUUID } from 'node:crypto';
import type { Context as OtelContext } from '@opentelemetry/api';
import type { Context } from '../context.js';
import { findByIdempotencyKeys, insertOrders, type OrderToInsert } from '../db/intake.js';
import type { LoadedOrder, OrderRow } from '../db/orders.js';
import type { OutboxRef } from '../db/outbox.js';
import type { Address, Customer } from '../db/schema.js';
import type { ShopRow } from '../db/shops.js';
import { inboundStock, unknownSkus } from '../db/stock.js';
import { requestHash } from '../domain/canonical.js';
import { CUSTOMER_CHANNELS } from '../domain/notify.js';
import type { Priority } from '../domain/priority.js';
import { restockEtaFor } from './allocate.js';
import { promiseFor } from './promise.js';
import { AppError } from '../errors.js';
import { ENQUEUE_TIMEOUT_MS, enqueueAfterCommit } from '../queues/enqueue.js';
import type { Outcome } from './gather.js';

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

/** One POST's order (or one entry of a batch), as handed to intakeMany. */
export interface IntakeRequest {
  shop: ShopRow;
  idempotencyKey: string;
  body: NewOrder;
  /** The request's trace context: its order's jobs continue it, whichever request runs the batch. */
  trace?: OtelContext;
}

export interface IntakeOptions {
  /**
   * Whether a failed commit of several orders is tried again one order per transaction, so that
   * one order the database refuses fails alone. Not for a database that is away: that fails the
   * batch (503) at once. Unset: never.
   */
  retryAlone?(error: unknown): boolean;
}

const pairOf = (shopId: string, key: string) => `${shopId}\u0000${key}`;

function unknownSku(skus: string[], unknown: Set<string>): AppError {
  const named = [...new Set(skus.filter((s) => unknown.has(s)))];
  return new AppError(422, 'unknown_sku', `Unknown SKU: ${named.join(', ')}.`, {
    errors: skus.flatMap((sku, i) =>
      unknown.has(sku) ? [{ path: `body/items/${i}/sku`, message: `unknown SKU "${sku}"` }] : [],
    ),
  });
}

function outcome(decide: () => IntakeResult): Outcome<IntakeResult> {
  try {
    return { ok: true, value: decide() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Intake of a batch of orders (group commit: steps/intake-batch.ts gathers them), each answered
 * exactly as if the requests had come one after another in the order given: one query for the
 * keys already used, one for unknown SKUs, ONE transaction committing every new order (database
 * first: an answered order is never lost with Redis), then one addBulk for their allocation and
 * one for their `received` messages — a failed enqueue is the reconciler's to redo.
 *
 * Two requests of the batch with one (shop, key): the first that is valid makes the order, each
 * later one answers it (200, or 409 for another body). A key a concurrent commit wins (another
 * batch, another process): the unique (shop, key) constraint decides and the loser answers the
 * winner's order. Returns one outcome per request, in order; throws (failing the whole batch)
 * only when the database does not answer.
 */
export async function intakeMany(
  ctx: Context,
  requests: IntakeRequest[],
  options: IntakeOptions = {},
): Promise<Outcome<IntakeResult>[]> {
  const outcomes: Outcome<IntakeResult>[] = new Array(requests.length);
  const hashes = requests.map((r) => requestHash(r.body));
  const pairs = requests.map((r) => pairOf(r.shop.id, r.idempotencyKey));

  const existing = new Map(
    (
      await findByIdempotencyKeys(
        ctx.db,
        requests.map((r) => ({ shopId: r.shop.id, key: r.idempotencyKey })),
      )
    ).map((o) => [pairOf(o.shopId, o.idempotencyKey), o]),
  );
  const fresh = requests.filter((_, i) => !existing.has(pairs[i]));
  const skus = [...new Set(fresh.flatMap((r) => r.body.items.map((item) => item.sku)))];
  const unknown = skus.length > 0 ? await unknownSkus(ctx.db, skus) : new Set<string>();

  // Decide in request order, as if one after another. leaders: the request that makes the order
  // of each new key; followers: later requests with that key, answered by the leader's order.
  const leaders = new Map<string, number>();
  const followers: number[] = [];
  requests.forEach((request, i) => {
    const known = existing.get(pairs[i]);
    if (known) outcomes[i] = outcome(() => repeat(known, hashes[i]));
    else if (leaders.has(pairs[i])) followers.push(i);
    else {
      const lineSkus = request.body.items.map((item) => item.sku);
      if (lineSkus.some((sku) => unknown.has(sku)))
        outcomes[i] = { ok: false, error: unknownSku(lineSkus, unknown) };
      else leaders.set(pairs[i], i);
    }
  });

  const leading = [...leaders.values()];
  if (leading.length > 0) {
    const inbound = await inboundStock(ctx.db, skus);
    const entries = await Promise.all(
      leading.map((i) => orderToInsert(ctx, requests[i], hashes[i], inbound)),
    );
    const committed = await commit(ctx, entries, options);

    // Leaders whose key a concurrent commit won: answer the winner's order (one query for all).
    const lost = leading.filter((i, n) => committed[n].ok && !committed[n].created);
    const winners = new Map(
      (
        await findByIdempotencyKeys(
          ctx.db,
          lost.map((i) => ({ shopId: requests[i].shop.id, key: requests[i].idempotencyKey })),
        )
      ).map((o) => [pairOf(o.shopId, o.idempotencyKey), o]),
    );
    const byPair = new Map<string, Outcome<{ order: OrderRow; created: boolean }>>();
    leading.forEach((i, n) => {
      const result = committed[n];
      if (!result.ok) byPair.set(pairs[i], result);
      else if (result.created)
        byPair.set(pairs[i], { ok: true, value: { order: result.order, created: true } });
      else {
        const winner = winners.get(pairs[i]);
        byPair.set(
          pairs[i],
          winner
            ? { ok: true, value: { order: winner, created: false } }
            : { ok: false, error: new Error('idempotency key conflict without a committed order') },
        );
      }
    });
    for (const i of [...leading, ...followers]) {
      const made = byPair.get(pairs[i])!;
      if (!made.ok) outcomes[i] = made;
      else if (made.value.created && leaders.get(pairs[i]) === i)
        outcomes[i] = { ok: true, value: { created: true, order: made.value.order } };
      else outcomes[i] = outcome(() => repeat(made.value.order, hashes[i]));
    }

    const created: NewlyCreated[] = [];
    leading.forEach((i, n) => {
      const c = committed[n];
      if (c.ok && c.created) created.push({ ...c, trace: requests[i].trace });
    });
    for (let n = 0; n < created.length; n++) ctx.statusChanges?.inc({ status: 'received' });
    await enqueueCreated(ctx, created);
  }
  return outcomes;
}

type Committed =
  | { ok: true; created: true; order: LoadedOrder; notifications: OutboxRef[] }
  | { ok: true; created: false }
  | { ok: false; error: unknown };

/**
 * One transaction for every new order; when it fails for a reason other than an absent
 * database, each order is tried again in its own, so an order the database refuses fails alone.
 */
async function commit(ctx: Context, entries: OrderToInsert[], options: IntakeOptions): Promise<Committed[]> {
  const answer = (
    inserted: Map<string, { order: LoadedOrder; notifications: OutboxRef[] }>,
    e: OrderToInsert,
  ) => {
    const made = inserted.get(e.row.id);
    return made ? ({ ok: true, created: true, ...made } as const) : ({ ok: true, created: false } as const);
  };
  try {
    const inserted = await insertOrders(ctx.db, entries, ctx.config);
    return entries.map((e) => answer(inserted, e));
  } catch (error) {
    if (entries.length === 1 || !options.retryAlone?.(error)) throw error;
    ctx.log.warn(
      { err: error, orders: entries.length },
      'intake batch refused; committing its orders one by one',
    );
    return Promise.all(
      entries.map(async (e): Promise<Committed> => {
        try {
          return answer(await insertOrders(ctx.db, [e], ctx.config), e);
        } catch (alone) {
          return { ok: false, error: alone };
        }
      }),
    );
  }
}

/** The row of a new order: its id, tracking token, promise (steps/promise.ts promiseFor). */
async function orderToInsert(
  ctx: Context,
  { shop, idempotencyKey, body }: IntakeRequest,
  hash: string,
  inbound: Awaited<ReturnType<typeof inboundStock>>,
): Promise<OrderToInsert> {
  const region = body.shippingAddress.region;
  const now = new Date(); // set here, not by the database, so cursors keep millisecond precision
  const id = randomUUID();
  const priority = body.priority ?? 'standard';
  // An order only a restock can fill is promised from that restock's ETA, not from now.
  const restockEta = await restockEtaFor(ctx, { id, priority, createdAt: now, region }, body.items, inbound);
  const promisedBy = await promiseFor(ctx, { now, priority, region, restockEta });
  return {
    row: {
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
    items: body.items,
    webhookUrl: shop.webhookUrl,
  };
}

/**
 * After the commit: every new order's allocation in one addBulk, every outbox row in one
 * (one round trip per channel queue), side by side, both within one enqueue bound — past it, or
 * with Redis away, the reconciler enqueues them (the orders are committed).
 */
interface NewlyCreated {
  order: LoadedOrder;
  notifications: OutboxRef[];
  trace?: OtelContext;
}

async function enqueueCreated(ctx: Context, created: NewlyCreated[]) {
  if (created.length === 0) return;
  const deadline = Date.now() + ENQUEUE_TIMEOUT_MS;
  const allocations = created.map(({ order, trace }) => ({
    data: { orderId: order.id, attempt: order.attempt },
    priority: order.priority,
    shopId: order.shopId,
    trace,
  }));
  const messages = created.flatMap(({ order, notifications, trace }) =>
    notifications.map(({ notificationId, channel }) => ({
      data: { notificationId, channel },
      priority: order.priority,
      trace,
    })),
  );
  await Promise.all([
    enqueueAfterCommit(
      ctx,
      `allocation of ${allocations.length} order(s)`,
      () => ctx.queues.addBulk('allocation', allocations),
      deadline,
    ),
    messages.length > 0
      ? enqueueAfterCommit(
          ctx,
          `${messages.length} notification(s)`,
          () => ctx.queues.addBulk('notification', messages),
          deadline,
        )
      : undefined,
  ]);
}
