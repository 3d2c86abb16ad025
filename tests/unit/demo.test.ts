import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildReport, formatReport, percentile } from '../../src/demo/report.js';
import { surgeOrders } from '../../src/demo/surge.js';
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
  }, 120_000);
});
