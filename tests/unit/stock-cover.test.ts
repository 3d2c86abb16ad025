import { describe, expect, it } from 'vitest';
import { atRisk, coverHours } from '../../src/domain/stock-cover.js';

describe('stock cover', () => {
  it("is available ÷ the last hour's units, null without demand", () => {
    expect(coverHours(30, 12)).toBe(2.5);
    expect(coverHours(0, 5)).toBe(0);
    expect(coverHours(10, 0)).toBeNull();
    expect(coverHours(-3, 4)).toBe(0); // never negative
  });

  it('is at risk when shorter than the time until the earliest ETA, else than the risk hours', () => {
    const now = new Date('2026-12-01T00:00:00.000Z');
    const inHours = (h: number) => new Date(now.getTime() + h * 3600_000);
    expect(atRisk(null, null, now, 72)).toBe(false);
    expect(atRisk(71.9, null, now, 72)).toBe(true);
    expect(atRisk(72, null, now, 72)).toBe(false); // exactly enough
    expect(atRisk(3, inHours(5), now, 72)).toBe(true);
    expect(atRisk(3, inHours(2), now, 72)).toBe(false); // lasts until the restock
    expect(atRisk(100, inHours(200), now, 72)).toBe(true); // the ETA, not the setting, is the horizon
    expect(atRisk(0, inHours(-1), now, 72)).toBe(false); // an ETA already past leaves no time to run short in
  });
});
