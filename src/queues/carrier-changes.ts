import type { Context } from '../context.js';

/** The Redis channel on which a carrier created or changed is announced (see announceCarrierChange). */
export const carriersChannel = (queuePrefix: string) => `${queuePrefix}:carriers-changed`;

/**
 * Tells every worker process that the carriers changed (POST/PATCH), so a new carrier's queue is
 * served, and a new limit applies, at once rather than at the next periodic read. Best effort:
 * the periodic read catches up when Redis does not answer.
 */
export async function announceCarrierChange(ctx: Pick<Context, 'redis' | 'config'>, carrierId: string) {
  await Promise.race([
    ctx.redis.publish(carriersChannel(ctx.config.queuePrefix), carrierId),
    new Promise((resolve) => setTimeout(resolve, 1000).unref()),
  ]).catch(() => undefined);
}
