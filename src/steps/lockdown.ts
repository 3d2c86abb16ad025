import type { Context } from '../context.js';
import type { Db } from '../db/client.js';
import {
  activeLockdown,
  activeLockdowns,
  heldOrders,
  holdsReservation,
  liftExpired,
  lockdownForHold,
  regionsWithStrandedHolds,
  stillHeldWithoutStock,
  type HoldCursor,
} from '../db/lockdowns.js';
import { findOrder, transition, type LoadedOrder } from '../db/orders.js';
import { canTransition } from '../domain/status.js';
import { TOPOLOGY } from '../queues/topology.js';
import { afterMove } from './after-move.js';
import { takePassLock } from '../queues/pass-lock.js';

/**
 * Region lockdowns (PUT/DELETE /v1/admin/regions/{region}/lockdown).
 *
 * Holding: allocation (a `received` order, before any stock is reserved) and dispatch (an
 * `allocated` order, which keeps its reservation) call holdIfLocked() first; an order of a locked
 * region moves to `on_hold` and the stage stops.
 *
 * Resuming: a lift (DELETE, or `until` passing) resumes the region's held orders highest priority
 * first, then oldest first, a page at a time: an order holding stock goes back to `allocated` and
 * gets its dispatch job, one holding none gets its allocation job (allocate() takes `on_hold`
 * orders without a reservation). Every job carries its order's priority and is added in resume
 * order with addBulk, so the queues — their workers' concurrency and, for dispatch, each
 * carrier's rate limit — meter the release: nothing is done in one burst but the enqueueing.
 */

/** Held orders read, moved and enqueued per page when a region resumes. */
export const RESUME_PAGE_SIZE = 500;
/** How often every worker process looks for work (lifts to resume, `until`s that passed). */
export const LOCKDOWN_TICK_MS = 1000;
/** How often, across processes, regions with orders held but no lockdown are looked for. */
export const STRANDED_SWEEP_MS = 15_000;
/** The pass's lock lasts this long and is extended after every page. */
const LOCK_MS = 30_000;
/**
 * Per-process cache of the lockdowns in force, so allocation under a surge does not read the
 * table for every order. It only ever answers "not locked" on its own: a "locked" answer is read
 * again from the table (with a share lock) before an order is held, so a lift is never missed. A
 * new lockdown reaches a process's orders within CACHE_MS (its own process forgets at once).
 */
const CACHE_MS = 1000;

const keys = (ctx: Context) => {
  const base = `${ctx.config.queuePrefix}:lockdowns`;
  return { lock: `${base}:lock`, requested: `${base}:resume`, sweep: `${base}:sweep` };
};

interface CacheEntry {
  expires: number;
  regions: Promise<Map<string, Date | null>>;
}
const caches = new WeakMap<Db, CacheEntry>();

/** Drops this process's cached lockdowns (after a PUT or a lift made here). */
export function forgetCachedLockdowns(ctx: Context): void {
  caches.delete(ctx.db);
}

async function lockedPerCache(ctx: Context, region: string, at: Date): Promise<boolean> {
  let entry = caches.get(ctx.db);
  if (!entry || entry.expires <= Date.now()) {
    const fresh: CacheEntry = {
      expires: Date.now() + CACHE_MS,
      regions: activeLockdowns(ctx.db, at).then((rows) => new Map(rows.map((r) => [r.region, r.until]))),
    };
    fresh.regions.catch(() => {
      if (caches.get(ctx.db) === fresh) caches.delete(ctx.db);
    });
    caches.set(ctx.db, fresh);
    entry = fresh;
  }
  const regions = await entry.regions;
  if (!regions.has(region)) return false;
  const until = regions.get(region);
  return until === null || until === undefined || until > at;
}

/**
 * True when the order's region is locked down now: the order is moved to `on_hold` (its event's
 * detail the lockdown's reason; the customer is told through the outbox) — or stays there, when a
 * resumed order finds its region locked again — and the caller stops. False: carry on.
 */
export async function holdIfLocked(ctx: Context, order: LoadedOrder): Promise<boolean> {
  const at = new Date();
  const held = order.status === 'on_hold';
  if (!held && !canTransition(order.status, 'on_hold')) return false;
  // A resumed order always asks the table: the cache could still hold the lockdown just lifted.
  if (!held && !(await lockedPerCache(ctx, order.region, at))) return false;
  let locked = false;
  const moved = await ctx.db.transaction(async (tx) => {
    const lockdown = await lockdownForHold(tx, order.region, at);
    if (!lockdown) return null;
    locked = true;
    if (held) return null;
    return transition(tx, order, { to: 'on_hold', at, detail: lockdown.reason }, ctx.config);
  });
  if (moved) await afterMove(ctx, moved);
  return locked;
}

/** Whether allocate() should take this order: `on_hold` (its lockdown lifted) and holding no stock. */
export async function resumesThroughAllocation(ctx: Context, order: LoadedOrder): Promise<boolean> {
  return order.status === 'on_hold' && !(await holdsReservation(ctx.db, order));
}

type ResumeQueue = 'allocation' | 'dispatch';
interface Busy {
  queue: ResumeQueue;
  order: LoadedOrder;
}

const jobIdOf = (queue: ResumeQueue, order: LoadedOrder) =>
  TOPOLOGY[queue].jobId({ orderId: order.id, attempt: order.attempt });

/**
 * Gives each order its job, in the given order, in one addBulk. Job ids are fixed per order and
 * attempt, and the job that held the order has completed under that id: a finished copy is removed
 * first, or BullMQ would take the add for a duplicate. A job still waiting keeps its place; one
 * still running (the stage that held the order, finishing) is returned, to be looked at again.
 */
async function enqueueInOrder(ctx: Context, queue: ResumeQueue, list: LoadedOrder[]): Promise<Busy[]> {
  if (list.length === 0) return [];
  const q = ctx.queues.byName[queue];
  const decisions = await Promise.all(
    list.map(async (order): Promise<'due' | 'busy' | 'queued'> => {
      const jobId = jobIdOf(queue, order);
      const state = await q.getJobState(jobId);
      if (state === 'unknown') return 'due';
      if (state !== 'completed' && state !== 'failed') return state === 'active' ? 'busy' : 'queued';
      if ((await q.remove(jobId)) === 1) return 'due';
      // Not removed: gone already (trimmed), or taken by a worker after all.
      return (await q.getJobState(jobId)) === 'unknown' ? 'due' : 'busy';
    }),
  );
  const busy: Busy[] = list.filter((_, i) => decisions[i] === 'busy').map((order) => ({ queue, order }));
  const due = list.filter((_, i) => decisions[i] === 'due');
  if (due.length > 0) {
    await ctx.queues.addBulk(
      queue,
      due.map((o) => ({
        data: { orderId: o.id, attempt: o.attempt },
        priority: o.priority,
        shopId: o.shopId,
      })),
    );
  }
  return busy;
}

/** Orders whose holding job was still running: once it ends, their job is added if still due. */
async function enqueueWhenFinished(ctx: Context, busy: Busy[], signal?: AbortSignal): Promise<void> {
  for (let round = 0; busy.length > 0 && round < 20 && !signal?.aborted; round++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const still: Busy[] = [];
    const due: Busy[] = [];
    for (const b of busy) {
      const state = await ctx.queues.byName[b.queue].getJobState(jobIdOf(b.queue, b.order));
      (state === 'active' ? still : due).push(b);
    }
    const allocating = await stillHeldWithoutStock(
      ctx.db,
      due.filter((b) => b.queue === 'allocation').map((b) => b.order.id),
    );
    const toAllocate = due
      .filter((b) => b.queue === 'allocation' && allocating.has(b.order.id))
      .map((b) => b.order);
    const toDispatch: LoadedOrder[] = [];
    for (const b of due.filter((d) => d.queue === 'dispatch')) {
      const now = await findOrder(ctx.db, b.order.id);
      if (now && now.attempt === b.order.attempt && now.status === 'allocated') toDispatch.push(now);
    }
    still.push(...(await enqueueInOrder(ctx, 'allocation', toAllocate)));
    still.push(...(await enqueueInOrder(ctx, 'dispatch', toDispatch)));
    busy = still;
  }
}

export interface Resumed {
  /** Orders moved back to `allocated` (they held stock) and given their dispatch job. */
  allocated: number;
  /** Orders given their allocation job (they held none). */
  toAllocate: number;
}

/**
 * Resumes a region's held orders, highest priority first, then oldest first, a page at a time
 * (see the module comment). Stops if the region is locked again. Safe to run again: an order
 * already moved on is no longer `on_hold`, and a job already waiting is left in its place.
 */
export async function resumeRegion(
  ctx: Context,
  region: string,
  options: { pageSize?: number; signal?: AbortSignal; onPage?: () => Promise<void> } = {},
): Promise<Resumed> {
  const limit = options.pageSize ?? RESUME_PAGE_SIZE;
  const resumed: Resumed = { allocated: 0, toAllocate: 0 };
  const busy: Busy[] = [];
  let after: HoldCursor | null = null;
  while (!options.signal?.aborted) {
    if (await activeLockdown(ctx.db, region)) break; // locked again: its holds stay
    const page = await heldOrders(ctx.db, region, { after, limit });
    if (page.length === 0) break;
    const toAllocate: LoadedOrder[] = [];
    const toDispatch: LoadedOrder[] = [];
    for (const order of page) {
      if (!order.reserved) {
        toAllocate.push(order);
        continue;
      }
      const moved = await ctx.db.transaction((tx) =>
        transition(
          tx,
          order,
          { to: 'allocated', detail: 'lockdown lifted; stock still reserved' },
          ctx.config,
        ),
      );
      if (!moved) continue; // moved on meanwhile (cancelled)
      await afterMove(ctx, moved);
      toDispatch.push(moved.order);
    }
    busy.push(...(await enqueueInOrder(ctx, 'allocation', toAllocate)));
    busy.push(...(await enqueueInOrder(ctx, 'dispatch', toDispatch)));
    resumed.allocated += toDispatch.length;
    resumed.toAllocate += toAllocate.length;
    await options.onPage?.();
    after = page[page.length - 1].cursor;
    if (page.length < limit) break;
  }
  await enqueueWhenFinished(ctx, busy, options.signal);
  if (resumed.allocated + resumed.toAllocate > 0) ctx.log.info({ region, ...resumed }, 'held orders resumed');
  return resumed;
}

/**
 * Asks the lockdown timer (in a worker process) to resume the region soon — within a tick. Left
 * to the stranded-hold sweep when Redis does not answer.
 */
export async function requestResume(ctx: Context, region: string): Promise<void> {
  try {
    await Promise.race([
      ctx.coord.addMember(keys(ctx).requested, region),
      new Promise((_, reject) => setTimeout(() => reject(new Error('Redis did not answer')), 2000).unref()),
    ]);
  } catch (error) {
    ctx.log.warn(
      { region, err: (error as Error).message },
      'resume request not recorded; the sweep will resume',
    );
  }
}

export interface LockdownPass {
  /** False when another process holds the lock: this one did nothing. */
  ran: boolean;
  /** Regions whose `until` passed in this pass. */
  expired: string[];
  /** Regions resumed. */
  resumed: string[];
}

/**
 * One pass, in one process at a time (a Redis lock): lifts the lockdowns whose `until` passed,
 * then resumes every region lifted since the last pass (by DELETE, by `until`) and — every
 * STRANDED_SWEEP_MS across processes — every region with orders held but no lockdown in force.
 */
export async function lockdownPassOnce(ctx: Context, signal?: AbortSignal): Promise<LockdownPass> {
  const k = keys(ctx);
  const started = Date.now();
  const lock = await takePassLock(ctx.coord, k.lock, LOCK_MS);
  if (!lock) return { ran: false, expired: [], resumed: [] };
  const extend = () => lock.extend();
  try {
    const expired = await liftExpired(ctx.db);
    if (expired.length > 0) forgetCachedLockdowns(ctx);
    const requested = await ctx.coord.members(k.requested);
    const sweep = await ctx.coord.setIfAbsent(k.sweep, '1', STRANDED_SWEEP_MS);
    const stranded = sweep ? await regionsWithStrandedHolds(ctx.db) : [];
    const regions = [...new Set([...expired, ...requested, ...stranded])];
    const resumed: string[] = [];
    for (const region of regions) {
      if (signal?.aborted) break;
      // Taken off first: a lift that comes while this resume runs asks again.
      if (requested.includes(region)) await ctx.coord.removeMember(k.requested, region);
      await resumeRegion(ctx, region, { signal, onPage: extend });
      resumed.push(region);
    }
    return { ran: true, expired, resumed };
  } finally {
    // Kept until a tick from the start: one pass per tick across processes, not one per process.
    await lock.release(started + LOCKDOWN_TICK_MS - Date.now());
  }
}
