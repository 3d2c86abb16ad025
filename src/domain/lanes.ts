import { PRIORITIES, type Priority } from './priority.js';

/**
 * Priority without starvation. Each stage's work waits in one lane (queue) per class; when a
 * stage is saturated — more work waits than it can take on — the next piece of work goes to the
 * highest class that has some, except that each lower class is owed its minimum share of the
 * admissions made while it waited behind a higher class. Classes without a minimum (essential)
 * take the rest.
 */
export type MinShares = Partial<Record<Priority, number>>;

export const DEFAULT_MIN_SHARES: MinShares = { standard: 0.1, express: 0.2 };

/** Credit a lane may hold: enough to be owed two turns at once, not a backlog's worth. */
const MAX_CREDIT = 2;

/**
 * Which lane is next. Every admission made while a lower class waits behind a higher one earns
 * that class its share in credit; a class holding a whole turn of credit is owed one, and is
 * taken before the higher classes (of several owed, the one holding most). A class that has
 * nothing waiting holds no credit, so it cannot save turns up while idle.
 */
export class ShareLedger {
  private readonly credit: Record<Priority, number> = { essential: 0, express: 0, standard: 0 };

  constructor(private readonly minShares: MinShares = DEFAULT_MIN_SHARES) {}

  /** The lane to admit next, of those with work waiting (`waiting[c] > 0`); null when none. */
  next(waiting: Record<Priority, number>): Priority | null {
    const candidates = PRIORITIES.filter((c) => waiting[c] > 0);
    for (const c of PRIORITIES) if (waiting[c] <= 0) this.credit[c] = 0;
    if (candidates.length === 0) return null;
    const top = candidates[0];
    let owed: Priority | null = null;
    for (const lane of candidates.slice(1)) {
      if (this.credit[lane] >= 1 - 1e-9 && (!owed || this.credit[lane] > this.credit[owed])) owed = lane;
    }
    for (const lane of candidates.slice(1)) {
      this.credit[lane] = Math.min(MAX_CREDIT, this.credit[lane] + (this.minShares[lane] ?? 0));
    }
    if (owed) this.credit[owed] -= 1;
    return owed ?? top;
  }
}

/** Checks minimum shares: each in [0, 1) and together below 1, so the top class keeps some room. */
export function validMinShares(shares: MinShares): boolean {
  const values = Object.values(shares);
  return values.every((s) => s >= 0 && s < 1) && values.reduce((a, b) => a + b, 0) < 1;
}
