import type { Context } from '../context.js';
import { allCarriers, type CarrierRow } from '../db/carriers.js';
import type { Subscription } from './coordination.js';

/** The Redis channel on which a carrier created or changed is announced (see announceCarrierChange). */
export const carriersChannel = (queuePrefix: string) => `${queuePrefix}:carriers-changed`;

/**
 * Tells every worker process that the carriers changed (POST/PATCH), so a new carrier's queue is
 * served, and a new limit applies, at once rather than at the next periodic read. Best effort:
 * the periodic read (and each process's carrier cache TTL) catches up when Redis does not answer.
 */
export async function announceCarrierChange(
  ctx: Pick<Context, 'coord' | 'config' | 'carrierCache'>,
  carrierId: string,
) {
  ctx.carrierCache?.invalidate(); // this process at once, Redis or not
  await Promise.race([
    ctx.coord.publish(carriersChannel(ctx.config.queuePrefix), carrierId),
    new Promise((resolve) => setTimeout(resolve, 1000).unref()),
  ]).catch(() => undefined);
}

/** How long this process answers from its last read of the carriers before reading them again. */
export const CARRIER_CACHE_TTL_MS = 5_000;

/** The carriers table as this process last read it (intake's promise reads it for every order). */
export interface CarrierCache {
  get(): Promise<CarrierRow[]>;
  /** Forget the last read: the next get() reads the table (a carrier was created or changed). */
  invalidate(): void;
  close(): void;
}

/**
 * An in-process copy of the carriers, read at most once per `ttlMs`, and forgotten at once when
 * a change is announced on Redis (announceCarrierChange, by any process) or made by this one.
 * The subscription starts on first use; while it is down a change shows within `ttlMs`. A read
 * that a change overtook is answered but not kept.
 */
export function createCarrierCache(
  ctx: Pick<Context, 'db' | 'coord' | 'config'>,
  ttlMs = CARRIER_CACHE_TTL_MS,
  now: () => number = Date.now,
): CarrierCache {
  let kept: { rows: CarrierRow[]; at: number } | undefined;
  let loading: Promise<CarrierRow[]> | undefined;
  let generation = 0;
  let subscriber: Subscription | undefined;
  let closed = false;

  const invalidate = () => {
    generation++;
    kept = undefined;
    loading = undefined;
  };
  const listen = () => {
    if (subscriber || closed) return;
    // Reconnects by itself; the TTL covers the gap, and a (re)start forgets what may have been missed.
    subscriber = ctx.coord.subscribe(carriersChannel(ctx.config.queuePrefix), {
      message: invalidate,
      ready: invalidate,
    });
  };

  return {
    get() {
      listen();
      if (kept && now() - kept.at < ttlMs) return Promise.resolve(kept.rows);
      if (loading) return loading;
      const read = generation;
      const at = now();
      const current: Promise<CarrierRow[]> = allCarriers(ctx.db)
        .then((rows) => {
          if (read === generation) kept = { rows, at };
          return rows;
        })
        .finally(() => {
          if (loading === current) loading = undefined;
        });
      loading = current;
      return current;
    },
    invalidate,
    close() {
      closed = true;
      subscriber?.close();
      subscriber = undefined;
    },
  };
}
