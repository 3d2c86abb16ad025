import type { Context } from '../context.js';
import { allCarriers } from '../db/carriers.js';
import type { Priority } from '../domain/priority.js';
import { promiseAt, transitHoursFor } from '../domain/promise.js';

export interface PromiseInput {
  /** When the order is taken in (or a retry starts). */
  now: Date;
  priority: Priority;
  region: string;
  /** The ETA of the restock that alone can fill the order, if any (allocate.ts restockEtaFor). */
  restockEta: Date | null;
}

/**
 * The delivery promise given to one order: from now — or, for an order only a restock can
 * fill, from that restock's ETA — plus the transit time of the first carrier that would be
 * tried for its region (domain/promise.ts). The one place a promise is computed: intake and an
 * operator's retry both ask here. Carriers come from this process's cache (ctx.carrierCache),
 * not from a read of the table per order.
 */
export async function promiseFor(ctx: Context, input: PromiseInput): Promise<Date> {
  const { now, region, restockEta } = input;
  const carriers = ctx.carrierCache ? await ctx.carrierCache.get() : await allCarriers(ctx.db);
  return promiseAt(
    restockEta && restockEta > now ? restockEta : now,
    transitHoursFor(carriers, region, ctx.config.defaultTransitHours),
  );
}
