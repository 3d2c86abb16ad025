import { describe, expect, it } from 'vitest';
import {
  countClosed,
  KPI_TARGETS,
  ordersPerMinute,
  rates,
  scorecard,
  windowBounds,
} from '../../src/domain/kpis.js';

const at = (iso: string) => new Date(iso);

describe('the scorecard definitions (domain/kpis.ts)', () => {
  it('counts only delivered and failed orders; on time against the initial promise; scores ≥ 4 satisfy', () => {
    const promise = at('2026-01-01T12:00:00.000Z');
    const counts = countClosed([
      {
        status: 'delivered',
        deliveredAt: at('2026-01-01T12:00:00.000Z'),
        initialPromisedBy: promise,
        score: 4,
      },
      {
        status: 'delivered',
        deliveredAt: at('2026-01-01T12:00:00.001Z'),
        initialPromisedBy: promise,
        score: 3,
      },
      { status: 'failed', deliveredAt: null, initialPromisedBy: promise },
      { status: 'cancelled', deliveredAt: null, initialPromisedBy: promise, score: 5 },
      { status: 'in_transit', deliveredAt: null, initialPromisedBy: promise },
    ]);
    expect(counts).toEqual({ closed: 3, delivered: 2, onTime: 1, failed: 1, scores: 2, satisfied: 1 });
    expect(rates(counts)).toEqual({ onTimeRate: 1 / 2, errorRate: 1 / 3, satisfaction: 1 / 2 });
  });

  it('null when there is nothing to measure', () => {
    expect(rates(countClosed([]))).toEqual({ onTimeRate: null, errorRate: null, satisfaction: null });
    const onlyFailed = countClosed([{ status: 'failed', deliveredAt: null, initialPromisedBy: new Date() }]);
    expect(rates(onlyFailed)).toEqual({ onTimeRate: null, errorRate: 1, satisfaction: null });
  });

  it('windows, orders per minute and the targets', () => {
    const now = at('2026-01-08T00:00:00.000Z');
    expect(windowBounds('1h', now).from.toISOString()).toBe('2026-01-07T23:00:00.000Z');
    expect(windowBounds('7d', now).from.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(ordersPerMinute(120, '1h')).toBe(2);
    expect(ordersPerMinute(1440, '24h')).toBe(1);
    const empty = { closed: 0, delivered: 0, onTime: 0, failed: 0, scores: 0, satisfied: 0 };
    const card = scorecard({
      window: '24h',
      total: empty,
      slices: {
        priority: { essential: { ...empty, closed: 1, failed: 1 } },
        region: {},
        carrier: {},
        warehouse: {},
      },
      processing: { p50: null, p95: null },
      received: 0,
      queueDepths: {},
    });
    expect(card.targets).toEqual({ onTimeRate: 0.95, errorRate: 0.01, satisfaction: 0.9 });
    expect(KPI_TARGETS).toBe(card.targets);
    expect(card.breakdown.priority.essential).toEqual({
      orders: 1,
      onTimeRate: null,
      errorRate: 1,
      satisfaction: null,
    });
  });
});
