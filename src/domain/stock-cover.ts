/**
 * Stock cover and risk: how long a stock row lasts at the last hour's demand, and whether that is
 * too short — shorter than the time until its next restock arrives or, with nothing inbound, than
 * STOCK_RISK_HOURS. Pure: the stock repository supplies the figures.
 */

/** The demand window: units allocated in it are the demand per hour. */
export const DEMAND_WINDOW_MS = 60 * 60 * 1000;

const HOUR_MS = 60 * 60 * 1000;

/** Hours `available` lasts at `unitsLastHour` per hour; null when nothing was allocated in the hour. */
export function coverHours(available: number, unitsLastHour: number): number | null {
  return unitsLastHour > 0 ? Math.max(available, 0) / unitsLastHour : null;
}

/**
 * A row is at risk when its cover is known and shorter than the time until its earliest inbound
 * ETA (an ETA already past leaves no time to run short in), or, with nothing inbound, shorter
 * than `riskHours`.
 */
export function atRisk(cover: number | null, inboundEta: Date | null, now: Date, riskHours: number): boolean {
  if (cover === null) return false;
  const horizonHours = inboundEta ? (inboundEta.getTime() - now.getTime()) / HOUR_MS : riskHours;
  return cover < horizonHours;
}
