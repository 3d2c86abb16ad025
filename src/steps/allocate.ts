import type { Context } from '../context.js';
import { allCarriers } from '../db/carriers.js';
import { findOrder, orderItemsOf, transition, type LoadedOrder, type Moved } from '../db/orders.js';
import { createParcels } from '../db/shipments.js';
import { availableStock, backorderedDemand, inboundStock, reservePlan, StockTaken } from '../db/stock.js';
import type { InboundStock } from '../domain/allocation/strategy.js';
import { strategyNamed } from '../domain/allocation/index.js';
import {
  mergeLines,
  regionDistances,
  type AllocationSettings,
  type AllocationStrategy,
  type OrderLine,
} from '../domain/allocation/strategy.js';
import { promiseAt, transitHoursFor } from '../domain/promise.js';
import type { Config } from '../config.js';
import type { Priority } from '../domain/priority.js';
import { enqueueAfterCommit } from '../queues/enqueue.js';
import type { OrderJob } from '../queues/topology.js';
import { afterMove } from './after-move.js';
import { holdIfLocked, resumesThroughAllocation } from './lockdown.js';

export type AllocationOutcome = 'allocated' | 'backordered' | 'waiting' | 'out_of_stock' | 'held' | 'skipped';

interface Allocation {
  strategy: AllocationStrategy;
  settings: AllocationSettings;
}
const chosen = new WeakMap<Config, Allocation>();

/** The strategy and settings this process allocates with (ALLOCATION_STRATEGY, ALLOW_SPLIT, REGION_DISTANCES). */
function allocationOf(config: Config): Allocation {
  let allocation = chosen.get(config);
  if (!allocation) {
    allocation = {
      strategy: strategyNamed(config.allocation.strategy),
      settings: {
        allowSplit: config.allocation.allowSplit,
        distances: regionDistances(config.allocation.regionDistances),
      },
    };
    chosen.set(config, allocation);
  }
  return allocation;
}

/**
 * Allocation: load → plan (domain strategy) → reserve the first plan whose stock is still there
 * and move the order to `allocated`, one parcel per warehouse, in one transaction → enqueue
 * dispatch. An order on-hand stock can't fill but unreceived restocks can goes `backordered`
 * (its promise moved to the restock's ETA plus transit); the backorder pass (steps/backorders.ts)
 * allocates it again when stock arrives. One neither can fill fails `out_of_stock`.
 *
 * Idempotent: an order no longer `received` (or `backordered`, or held without stock) is left
 * alone (its next job is re-enqueued). An order of a locked-down region is held (`on_hold`)
 * before anything is reserved.
 */
export async function allocate(ctx: Context, job: OrderJob): Promise<AllocationOutcome> {
  for (let round = 1; ; round++) {
    const outcome = await allocateOnce(ctx, job);
    if (outcome !== 'raced') return outcome;
    // Every plan's stock was taken between our read and our reservation: read again. Bounded,
    // so a hot SKU under a surge fails the job (BullMQ retries it) rather than spinning here.
    if (round === RACE_ROUNDS) throw new Error(`order ${job.orderId}: stock kept being taken; will retry`);
  }
}

/** How often one allocation job reads stock again after losing every plan to other orders. */
const RACE_ROUNDS = 5;

async function allocateOnce(ctx: Context, job: OrderJob): Promise<AllocationOutcome | 'raced'> {
  const order = await findOrder(ctx.db, job.orderId);
  if (!order || order.attempt !== job.attempt) return 'skipped';
  const takes =
    order.status === 'received' ||
    order.status === 'backordered' ||
    (await resumesThroughAllocation(ctx, order));
  if (!takes) {
    if (order.status === 'allocated') await enqueueDispatch(ctx, order);
    return 'skipped';
  }
  if (await holdIfLocked(ctx, order)) return 'held';

  const lines = mergeLines(await orderItemsOf(ctx.db, order.id));
  const skus = lines.map((l) => l.sku);
  const [stock, inbound, claimed] = await Promise.all([
    availableStock(ctx.db, skus),
    inboundStock(ctx.db, skus),
    backorderedDemand(ctx.db, order, skus),
  ]);
  const { strategy, settings } = allocationOf(ctx.config);
  const plan = strategy.plan(
    { lines, stock, region: order.region, inbound, claimed, now: new Date() },
    settings,
  );

  if (plan.kind === 'parcels') {
    for (const parcels of plan.options) {
      let moved: Moved | null;
      try {
        moved = await ctx.db.transaction(async (tx) => {
          const result = await transition(
            tx,
            order,
            {
              to: 'allocated',
              detail: `reserved in ${parcels.map((p) => `warehouse ${p.warehouseId}`).join(', ')}`,
            },
            ctx.config,
          );
          if (!result) return null;
          await reservePlan(tx, order, parcels);
          await createParcels(
            tx,
            order,
            parcels.map((p) => p.warehouseId),
          );
          return result;
        });
      } catch (error) {
        if (error instanceof StockTaken) continue; // another order took it: try the next plan
        throw error;
      }
      if (!moved) return 'skipped';
      await afterMove(ctx, moved);
      await enqueueDispatch(ctx, moved.order);
      return 'allocated';
    }
    return 'raced';
  }

  if (plan.kind === 'backorder') {
    if (order.status === 'backordered') return 'waiting'; // still waiting; the pass tries again
    const transitHours = transitHoursFor(
      await allCarriers(ctx.db),
      order.region,
      ctx.config.defaultTransitHours,
    );
    const promisedBy = promiseAt(plan.eta, transitHours);
    const moved = await ctx.db.transaction((tx) =>
      transition(
        tx,
        order,
        {
          to: 'backordered',
          detail: `waiting for a restock due ${plan.eta.toISOString()}`,
          set: { promisedBy },
        },
        ctx.config,
      ),
    );
    if (!moved) return 'skipped';
    await afterMove(ctx, moved);
    return 'backordered';
  }

  const failed = await ctx.db.transaction((tx) =>
    transition(
      tx,
      order,
      {
        to: 'failed',
        detail: 'neither stock on hand nor restocks on their way can fill it',
        set: { failureReason: 'out_of_stock' },
      },
      ctx.config,
    ),
  );
  if (!failed) return 'skipped';
  await afterMove(ctx, failed);
  return 'out_of_stock';
}

/**
 * The restock ETA an order placed now would wait for — null when stock on hand can fill it, or
 * nothing inbound can — so intake promises what the engine can keep (contract: `promisedBy`).
 * One cheap read of unreceived restocks when there are none, the whole plan only when there are.
 * `inbound`: the unreceived restocks of (at least) these SKUs already read for a whole intake
 * batch (inboundStock), so a batch makes that cheap read once rather than once per order.
 */
export async function restockEtaFor(
  ctx: Context,
  order: { id: string; priority: Priority; createdAt: Date; region: string },
  items: OrderLine[],
  inboundRead?: InboundStock[],
): Promise<Date | null> {
  const lines = mergeLines(items);
  const skus = lines.map((l) => l.sku);
  const inbound = inboundRead
    ? inboundRead.filter((r) => skus.includes(r.sku))
    : await inboundStock(ctx.db, skus);
  if (inbound.length === 0) return null;
  const [stock, claimed] = await Promise.all([
    availableStock(ctx.db, skus),
    backorderedDemand(ctx.db, order, skus),
  ]);
  const { strategy, settings } = allocationOf(ctx.config);
  const plan = strategy.plan(
    { lines, stock, region: order.region, inbound, claimed, now: order.createdAt },
    settings,
  );
  return plan.kind === 'backorder' ? plan.eta : null;
}

async function enqueueDispatch(ctx: Context, order: LoadedOrder) {
  await enqueueAfterCommit(ctx, 'dispatch', () =>
    ctx.queues.add('dispatch', { orderId: order.id, attempt: order.attempt }, order),
  );
}
