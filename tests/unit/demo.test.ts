import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  buildReport,
  formatReport,
  formatScorecard,
  percentile,
  supplyReport,
} from '../../src/demo/report.js';
import { feedbackScore, seededRandom, surgeOrders } from '../../src/demo/surge.js';
import { uniquePrefix } from '../helpers/harness.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('demo report', () => {
  it('computes percentiles by nearest rank', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
    expect(percentile([10, 1, 9, 2, 8, 3, 7, 4, 6, 5], 95)).toBe(10);
  });

  it('counts on-time and error rates over closed orders, and stage latencies from the timeline', () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    const orders = [
      {
        id: 'a',
        status: 'delivered',
        priority: 'essential',
        failureReason: null,
        initialPromisedBy: t(100),
        deliveredAt: t(50),
      },
      {
        id: 'b',
        status: 'delivered',
        priority: 'standard',
        failureReason: null,
        initialPromisedBy: t(10),
        deliveredAt: t(20),
      },
      {
        id: 'c',
        status: 'failed',
        priority: 'standard',
        failureReason: 'out_of_stock',
        initialPromisedBy: t(10),
        deliveredAt: null,
      },
      {
        id: 'd',
        status: 'cancelled',
        priority: 'express',
        failureReason: null,
        initialPromisedBy: t(10),
        deliveredAt: null,
      },
    ];
    const events = [
      { orderId: 'a', status: 'received', recordedAt: t(0) },
      { orderId: 'a', status: 'allocated', recordedAt: t(1) },
      { orderId: 'a', status: 'dispatched', recordedAt: t(3) },
      { orderId: 'a', status: 'delivered', recordedAt: t(9) },
    ];
    const report = buildReport(orders, events);
    expect(report.byStatus).toEqual({ delivered: 2, failed: 1, cancelled: 1 });
    expect(report.failureReasons).toEqual({ out_of_stock: 1 });
    expect(report.onTimeRate).toBe(0.5);
    expect(report.errorRate).toBeCloseTo(1 / 3);
    expect(report.stages.find((s) => s.stage === 'dispatch')).toMatchObject({ count: 1, p50Ms: 2000 });
    expect(report.stages.find((s) => s.stage === 'end to end')).toMatchObject({ count: 1, p95Ms: 9000 });
    expect(formatReport(report)).toContain('on-time rate     50.0%');
  });

  it('counts split orders per attempt and backorders delivered in the end', () => {
    const t = new Date(0);
    const orders = [
      {
        id: 'a',
        status: 'delivered',
        priority: 'standard',
        failureReason: null,
        initialPromisedBy: t,
        deliveredAt: t,
      },
      {
        id: 'b',
        status: 'failed',
        priority: 'standard',
        failureReason: 'out_of_stock',
        initialPromisedBy: t,
        deliveredAt: null,
      },
      {
        id: 'c',
        status: 'delivered',
        priority: 'standard',
        failureReason: null,
        initialPromisedBy: t,
        deliveredAt: t,
      },
    ];
    const events = [
      { orderId: 'a', status: 'backordered', recordedAt: t },
      { orderId: 'b', status: 'backordered', recordedAt: t },
    ];
    const parcels = [
      { orderId: 'a', attempt: 1, warehouseId: 'w1' },
      { orderId: 'a', attempt: 1, warehouseId: 'w2' },
      // Two attempts, one warehouse each: not a split.
      { orderId: 'c', attempt: 1, warehouseId: 'w1' },
      { orderId: 'c', attempt: 2, warehouseId: 'w2' },
    ];
    expect(supplyReport(orders, events, parcels)).toEqual({
      split: 1,
      backordered: 2,
      backorderedDelivered: 1,
    });
  });

  it('prints each scorecard figure against its target, met or missed', () => {
    const text = formatScorecard({
      window: '1h',
      onTimeRate: 0.96,
      errorRate: 0.02,
      satisfaction: null,
      processingTimeMs: { p50: 1200, p95: 4000 },
      ordersPerMinute: 12.5,
      targets: { onTimeRate: 0.95, errorRate: 0.01, satisfaction: 0.9 },
      breakdown: { priority: { essential: { orders: 3, onTimeRate: 1, errorRate: 0 } } },
    });
    expect(text).toMatch(/on-time rate\s+96\.0%\s+target ≥\s+95\.0%\s+met/);
    expect(text).toMatch(/error rate\s+2\.0%\s+target <\s+1\.0%\s+MISSED/);
    expect(text).toMatch(/satisfaction\s+n\/a/);
    expect(text).toContain('essential            3 orders');
  });

  it('simulated customers are mostly pleased by a punctual order and mostly not by a late one', () => {
    const random = seededRandom(1);
    const share = (onTime: boolean) =>
      Array.from({ length: 2000 }, () => feedbackScore(random, onTime)).filter((s) => s >= 4).length / 2000;
    expect(share(true)).toBeGreaterThan(0.9);
    expect(share(false)).toBeLessThan(0.2);
  });

  it('generates the same surge for the same seed, within the contract limits', () => {
    const a = surgeOrders(50, ['X', 'Y'], ['r1', 'r2']);
    expect(surgeOrders(50, ['X', 'Y'], ['r1', 'r2'])).toEqual(a);
    expect(new Set(a.map((o) => o.priority))).toEqual(new Set(['essential', 'express', 'standard']));
    for (const order of a) {
      expect(order.items.length).toBeGreaterThanOrEqual(1);
      for (const item of order.items) expect(item.quantity).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('npm run demo', () => {
  it('runs a small surge to the end and prints the report', async () => {
    const port = await freePort();
    const child = spawn('npx', ['tsx', 'src/demo/run.ts'], {
      env: {
        ...process.env,
        DEMO_ORDERS: '40',
        DEMO_OUTAGE_MS: '4000',
        DEMO_LOCKDOWN_MS: '2000',
        DEMO_RESTOCK_MS: '2000',
        DEMO_SUPPLIER_HALT_MS: '3000',
        DEMO_EXIT: '1',
        PORT: String(port),
        QUEUE_PREFIX: uniquePrefix(),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, output).toBe(0);
    expect(output).toContain('Surgeline demo report');
    const delivered = /by status .*delivered (\d+)/.exec(output);
    expect(Number(delivered?.[1]), output).toBeGreaterThan(30);
    expect(output).toMatch(/on-time rate\s+\d+\.\d%/);
    expect(output).toMatch(/dispatch\s+\d+\s+\d+ ms\s+\d+ ms/);
    // The logistics story: the sealed district's orders were held, swift's outage failed over.
    expect(Number(/orders held by a lockdown\s+(\d+)/.exec(output)?.[1])).toBeGreaterThan(0);
    expect(output).toMatch(/booked after failover\s+\d+/);
    expect(output).toMatch(/dead letters\s+\d+ \(re-driven \d+\)/);
    // The supply story: the group buy shipped split; backorders and alerts are reported.
    expect(Number(/split orders\s+(\d+)/.exec(output)?.[1]), output).toBeGreaterThanOrEqual(1);
    expect(output).toMatch(/backordered\s+\d+ \(delivered after the restock \d+\)/);
    expect(output).toMatch(/stock alerts raised\s+\d+/);
    // It ends with the engine's own scorecard against the targets.
    expect(output).toMatch(/scorecard \(GET \/v1\/admin\/kpis\?window=1h/);
    expect(output).toMatch(/on-time rate\s+\d+\.\d%\s+target ≥\s+95\.0%\s+(met|MISSED)/);
    expect(output).toMatch(/error rate\s+\d+\.\d%\s+target <\s+1\.0%\s+(met|MISSED)/);
    expect(output).toMatch(/satisfaction\s+\d+\.\d%\s+target ≥\s+90\.0%\s+(met|MISSED)/);
  }, 120_000);
});
