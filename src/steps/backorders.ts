import type { Context } from '../context.js';

/** Redis keys of the backorder pass (see backorderPassOnce). */
export const backorderKeys = (ctx: Context) => {
  const base = `${ctx.config.queuePrefix}:backorders`;
  return { lock: `${base}:lock`, requested: `${base}:requested` };
};

/**
 * Stock arrived (a restock received, on-hand raised, a supplier back): asks the backorder pass
 * (in a worker process) to run within a tick. When Redis does not answer, the periodic sweep
 * runs it anyway, so a lost request only delays the backorders.
 */
export async function requestBackorderPass(ctx: Context, why: string): Promise<void> {
  try {
    await Promise.race([
      ctx.redis.set(backorderKeys(ctx).requested, why),
      new Promise((_, reject) => setTimeout(() => reject(new Error('Redis did not answer')), 2000).unref()),
    ]);
  } catch (error) {
    ctx.log.warn({ why, err: (error as Error).message }, 'backorder pass not requested; the sweep will run it');
  }
}
