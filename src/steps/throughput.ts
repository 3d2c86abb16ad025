import type { Context } from '../context.js';
import { intakePerMinute } from '../db/forecast.js';
import { closuresPerMinute } from '../db/throughput.js';
import { MINUTE_MS } from '../domain/forecast.js';

export interface ThroughputMinute {
  at: Date;
  received: number;
  delivered: number;
  failed: number;
}

/** Minutes charted: the last hour, the current (partial) minute last. */
export const THROUGHPUT_MINUTES = 60;

/**
 * Orders received, delivered and failed per minute over the last hour, from the database (so the
 * same in every API process), every minute present (0 when nothing happened in it).
 */
export async function throughputOf(ctx: Pick<Context, 'db'>, now = new Date()): Promise<ThroughputMinute[]> {
  const current = Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS;
  const from = new Date(current - (THROUGHPUT_MINUTES - 1) * MINUTE_MS);
  const to = new Date(current + MINUTE_MS);
  const [received, closed] = await Promise.all([
    intakePerMinute(ctx.db, { from, to }),
    closuresPerMinute(ctx.db, { from, to }),
  ]);
  const minutes = new Map<number, ThroughputMinute>();
  for (let i = 0; i < THROUGHPUT_MINUTES; i++) {
    const at = from.getTime() + i * MINUTE_MS;
    minutes.set(at, { at: new Date(at), received: 0, delivered: 0, failed: 0 });
  }
  for (const r of received) {
    const m = minutes.get(r.minute.getTime());
    if (m) m.received = r.orders;
  }
  for (const c of closed) {
    const m = minutes.get(c.minute.getTime());
    if (m) Object.assign(m, { delivered: c.delivered, failed: c.failed });
  }
  return [...minutes.values()];
}
