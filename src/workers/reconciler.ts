import type { Job, JobState, Queue } from 'bullmq';
import type { Context } from '../context.js';
import {
  cancellationsWaiting,
  notificationKeys,
  notificationsWaiting,
  orderKeys,
  ordersWaiting,
  parcelKeys,
  parcelsToBook,
  type ScanPosition as Cursor,
  type WaitingRow,
} from '../db/reconcile.js';
import { allCarriers } from '../db/carriers.js';
import { takePassLock } from '../queues/pass-lock.js';
import { BOOKING, TOPOLOGY, type JobData, type QueueName } from '../queues/topology.js';

/** Rows read, and job ids checked in Redis, per page. */
export const RECONCILE_PAGE_SIZE = 500;
/** How long one pass may scan; a pass that runs out resumes from its cursor at the next. */
export const RECONCILE_PASS_BUDGET_MS = 5_000;
/** The lock outlives a pass that runs to its budget by this much (a slow last page). */
const LOCK_MARGIN_MS = 10_000;
/** A pass that stopped on its budget (backlog left) is followed by the next this soon. */
const CONTINUE_AFTER_MS = 200;
/** A cursor left by a pass that never came back (a crash) is forgotten after this long. */
const CURSOR_TTL_S = 3600;

/** Job states read at once by a reconciler page (see reconcilePage). */
const STATE_READS_AT_ONCE = 25;

/** A job in one of these states will run (or is running): the reconciler leaves it alone. */
const ALIVE: ReadonlySet<JobState | 'unknown'> = new Set<JobState | 'unknown'>([
  'active',
  'waiting',
  'delayed',
  'prioritized',
  'waiting-children',
]);

export interface ReconcileOptions {
  pageSize?: number;
  budgetMs?: number;
  /** Pages read at most in one pass (tests: short passes without depending on the clock). */
  maxPages?: number;
  /** Stops the pass between pages (the process is shutting down). */
  signal?: AbortSignal;
}

export interface ReconcilePass {
  /** False when another process holds the lock: this one did nothing. */
  ran: boolean;
  /** Jobs added again, or failed jobs retried. */
  requeued: number;
  /** Rows looked at. */
  scanned: number;
  /** Every scan ran to their end; false when the budget ran out first (cursor kept). */
  exhausted: boolean;
}

function parseCursor(saved: string | null): Cursor | null {
  try {
    const cursor = saved ? (JSON.parse(saved) as Partial<Cursor>) : null;
    return typeof cursor?.at === 'string' && typeof cursor.id === 'string'
      ? { at: cursor.at, id: cursor.id }
      : null;
  } catch {
    return null; // unreadable: start from the beginning
  }
}

/** What one page of a table scan found: a candidate whose job may need adding. */
interface Candidate {
  id: string;
  queue: Queue;
  jobId: string;
  /** Whether the row still stands as it was scanned (re-read after the Redis check). */
  key: string;
  add: () => Promise<Job>;
}

interface Scan {
  name: string;
  /** Reads the next page after the cursor; returns its candidates and the last row's position. */
  page(cursor: Cursor | null, before: Date, limit: number): Promise<{ rows: Candidate[]; last?: Cursor }>;
  /** Of these ids, the keys (see Candidate.key) the rows have now. */
  current(ids: string[]): Promise<Map<string, string>>;
  /** Of these ids, the rows whose work goes on in other jobs (an order's booking calls). */
  underWay?(ids: string[]): Promise<Set<string>>;
}

/** A scan over rows that each want one job of `queue`, whose data `dataOf` derives from the row. */
function scanOf<R extends WaitingRow, Q extends QueueName>(
  ctx: Context,
  name: string,
  read: (opts: { after: Cursor | null; before: Date; limit: number }) => Promise<R[]>,
  keys: (ids: string[]) => Promise<Map<string, string>>,
  job: (row: R) => { queue: Q; data: JobData[Q] },
  underWay?: (ids: string[]) => Promise<Set<string>>,
): Scan {
  return {
    name,
    underWay,
    async page(cursor, before, limit) {
      const rows = await read({ after: cursor, before, limit });
      const candidates = rows.map((row): Candidate => {
        const { queue, data } = job(row);
        return {
          id: row.id,
          key: row.key,
          queue: ctx.queues.queueOf(queue, data, row.priority),
          jobId: TOPOLOGY[queue].jobId(data),
          add: () => ctx.queues.add(queue, data, row),
        };
      });
      const last = rows.at(-1);
      return { rows: candidates, last: last && { at: last.at, id: last.id } };
    },
    current: keys,
  };
}

function scansOf(ctx: Context): Scan[] {
  return [
    scanOf(
      ctx,
      'orders',
      (opts) => ordersWaiting(ctx.db, ['received', 'allocated'], opts),
      (ids) => orderKeys(ctx.db, ids),
      (order) => ({
        queue: order.status === 'received' ? 'allocation' : 'dispatch',
        data: { orderId: order.id, attempt: order.attempt },
      }),
      (ids) => ordersBeingBooked(ctx, ids),
    ),
    scanOf(
      ctx,
      'notifications',
      (opts) => notificationsWaiting(ctx.db, opts),
      (ids) => notificationKeys(ctx.db, ids),
      (row) => ({ queue: 'notification', data: { notificationId: row.id, channel: row.channel } }),
    ),
    scanOf(
      ctx,
      'cancellations',
      (opts) => cancellationsWaiting(ctx.db, opts),
      (ids) => parcelKeys(ctx.db, ids),
      (row) => ({ queue: 'cancellation', data: { shipmentId: row.id } }),
    ),
  ];
}

/** Runs `read` on every item, STATE_READS_AT_ONCE at a time. */
async function readFew<T, R>(items: T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  // On Redis they go out together anyway; on PostgreSQL each is a query (three for a laned
  // stage), and a whole page at once would take every connection of the queue pool.
  for (let i = 0; i < items.length; i += STATE_READS_AT_ONCE) {
    results.push(...(await Promise.all(items.slice(i, i + STATE_READS_AT_ONCE).map(read))));
  }
  return results;
}

/**
 * Of these allocated orders, those with a booking job alive in a carrier's lane. Their dispatch
 * job completed once it routed the parcels, and the order stays `allocated` until they are
 * booked: while the booking lanes are backlogged that is work under way, not work lost.
 */
async function ordersBeingBooked(ctx: Context, orderIds: string[]): Promise<Set<string>> {
  const parcels = await parcelsToBook(ctx.db, orderIds);
  if (parcels.length === 0) return new Set();
  const carriers = ctx.carrierCache ? await ctx.carrierCache.get() : await allCarriers(ctx.db);
  const probes = parcels.flatMap((parcel) =>
    carriers.flatMap((carrier) => {
      const lane = ctx.queues.carrierQueue(carrier.id).byClass[parcel.priority];
      const calls = [parcel.calls, parcel.calls + 1].filter((call) => call > 0);
      return calls.map((call) => ({
        orderId: parcel.orderId,
        lane,
        jobId: BOOKING.jobId({ shipmentId: parcel.shipmentId, call }),
      }));
    }),
  );
  const states = await readFew(probes, (probe) => probe.lane.getJobState(probe.jobId));
  return new Set(probes.filter((_, i) => ALIVE.has(states[i])).map((probe) => probe.orderId));
}

/**
 * One page: the job states of every row at once (the commands go out together, not one round
 * trip per row), then — for rows whose job is gone or finished — the rows again, so work that
 * moved on meanwhile (its job completed and was trimmed after our read) is not run twice.
 */
async function reconcilePage(scan: Scan, rows: Candidate[]): Promise<number> {
  const states = await readFew(rows, (row) => row.queue.getJobState(row.jobId));
  const idle = rows.map((row, i) => ({ row, state: states[i] })).filter(({ state }) => !ALIVE.has(state));
  const underWay = scan.underWay ? await scan.underWay(idle.map((s) => s.row.id)) : new Set<string>();
  const suspects = idle.filter(({ row }) => !underWay.has(row.id));
  if (suspects.length === 0) return 0;
  const now = await scan.current(suspects.map((s) => s.row.id));
  const due = suspects.filter(({ row }) => now.get(row.id) === row.key);
  const added = await Promise.all(due.map(({ row, state }) => restore(row, state)));
  return added.filter(Boolean).length;
}

/**
 * Gives the row its job back. A failed copy is retried with its attempts reset (it failed for
 * good, yet the work is still due); a completed one whose work is still undone (it ran against
 * an older state) is replaced; a missing one is added.
 */
async function restore(row: Candidate, state: JobState | 'unknown'): Promise<boolean> {
  if (state === 'failed') {
    const job = await row.queue.getJob(row.jobId);
    if (job) {
      try {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        return true;
      } catch {
        // Trimmed or moved since we looked: fall through and make sure a copy exists.
      }
    }
  }
  if (state === 'failed' || state === 'completed') {
    const now = await row.queue.getJobState(row.jobId);
    if (ALIVE.has(now)) return false;
    await row.queue.remove(row.jobId).catch(() => undefined);
  }
  await row.add();
  return true;
}

/**
 * The database is the source of truth: any order waiting for a stage, any unsent notification
 * and any parcel whose booking must still be cancelled, whose job is missing from Redis (flushed, restarted, a crash between commit and
 * enqueue) gets its job again. Runs in every worker process; a pass lock (queues/pass-lock.ts) lets one at a time work.
 *
 * Each scan is walked in (time, id) order with a keyset cursor kept in Redis, a page of each in
 * turn, until both are exhausted or the pass's budget runs out; the next pass, in whichever
 * process, resumes where this one stopped. So a lost row is reached however many live rows sort
 * before it.
 */
export async function reconcileOnce(ctx: Context, options: ReconcileOptions = {}): Promise<ReconcilePass> {
  const pageSize = options.pageSize ?? RECONCILE_PAGE_SIZE;
  const budgetMs = options.budgetMs ?? RECONCILE_PASS_BUDGET_MS;
  const base = `${ctx.config.queuePrefix}:reconciler`;
  const lockKey = `${base}:lock`;
  const started = Date.now();
  const interval = Math.max(ctx.config.reconcileIntervalMs, 1000);
  const lock = await takePassLock(ctx.coord, lockKey, Math.max(interval, budgetMs + LOCK_MARGIN_MS));
  if (!lock) return { ran: false, requeued: 0, scanned: 0, exhausted: false };

  const deadline = started + budgetMs;
  const before = new Date(started - ctx.config.reconcileGraceMs);
  const scans = await Promise.all(
    scansOf(ctx).map(async (scan) => {
      const cursorKey = `${base}:cursor:${scan.name}`;
      return { scan, cursorKey, cursor: parseCursor(await ctx.coord.get(cursorKey)), done: false };
    }),
  );
  let requeued = 0;
  let scanned = 0;
  let pages = 0;
  const mayGoOn = () =>
    !options.signal?.aborted && Date.now() < deadline && pages < (options.maxPages ?? Infinity);
  try {
    // A page of each scan in turn, so a long backlog in one does not starve the other.
    while (scans.some((s) => !s.done) && mayGoOn()) {
      for (const state of scans) {
        if (state.done || !mayGoOn()) continue;
        pages++;
        const { rows, last } = await state.scan.page(state.cursor, before, pageSize);
        scanned += rows.length;
        requeued += await reconcilePage(state.scan, rows);
        if (rows.length < pageSize || !last) {
          state.done = true;
          state.cursor = null;
          await ctx.coord.del(state.cursorKey);
        } else {
          state.cursor = last;
          await ctx.coord.set(state.cursorKey, JSON.stringify(last), CURSOR_TTL_S * 1000);
        }
      }
    }
  } finally {
    const exhausted = scans.every((s) => s.done);
    // Done: keep the lock until a full interval from the start (one pass per interval across
    // processes). Backlog left: free it so the next pass, in any process, follows right away.
    const keepMs = exhausted ? started + interval - Date.now() : 0;
    await lock.release(keepMs);
  }

  const exhausted = scans.every((s) => s.done);
  if (requeued > 0) ctx.log.warn({ requeued, scanned }, 'reconciler re-enqueued work missing from Redis');
  return { ran: true, requeued, scanned, exhausted };
}

/**
 * Runs a pass every RECONCILE_INTERVAL_MS; while a backlog is left (a pass ran out of budget),
 * the next follows shortly. stop() ends the pass in flight after its current page.
 */
export function startReconciler(ctx: Context): { stop(): void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const schedule = (delayMs: number) => {
    if (controller.signal.aborted) return;
    timer = setTimeout(run, delayMs);
    timer.unref();
  };
  const run = () => {
    reconcileOnce(ctx, { signal: controller.signal })
      .then(
        (pass) => (pass.ran && !pass.exhausted ? CONTINUE_AFTER_MS : ctx.config.reconcileIntervalMs),
        (error) => {
          ctx.log.warn({ err: error }, 'reconciler pass failed; will try again');
          return ctx.config.reconcileIntervalMs;
        },
      )
      .then(schedule);
  };
  schedule(ctx.config.reconcileIntervalMs);
  return {
    stop: () => {
      controller.abort();
      clearTimeout(timer);
    },
  };
}
