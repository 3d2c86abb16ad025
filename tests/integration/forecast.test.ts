/**
 * GET /v1/admin/forecast and its gauges over an intake written straight into the database: two
 * orders a minute over the last three hours (Holt's trend: less than two days of history).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_JOB_SECONDS } from '../../src/domain/forecast.js';
import { stageJobSeconds } from '../../src/steps/forecast.js';
import { orders, shops } from '../../src/db/schema.js';
import { QUEUE_NAMES } from '../../src/queues/topology.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const MIN = 60_000;
const CURRENT_MINUTE = Math.floor(Date.now() / MIN) * MIN;
const HOURS = 3;
const PER_MINUTE = 2;

async function insertIntake(db: TestDatabase['database']['db']) {
  const shopId = randomUUID();
  await db.insert(shops).values({
    id: shopId,
    name: 'forecast shop',
    apiKeyId: randomBytes(8).toString('hex'),
    apiKeyHash: 'x',
    webhookSecret: 'secret-forecast',
  });
  const rows = [];
  for (let k = 1; k <= HOURS * 60; k++) {
    for (let i = 0; i < PER_MINUTE; i++) {
      const createdAt = new Date(CURRENT_MINUTE - k * MIN + 10_000 + i * 20_000);
      const key = `f-${k}-${i}`;
      rows.push({
        id: randomUUID(),
        shopId,
        idempotencyKey: key,
        requestHash: key,
        externalId: key,
        status: 'received' as const,
        priority: 'standard' as const,
        customer: { name: 'F' },
        shippingAddress: { region: 'north', line1: '1', city: 'c', postalCode: '1', country: 'CN' },
        region: 'north',
        locale: 'en',
        notifyChannels: [],
        trackingToken: randomBytes(16).toString('base64url'),
        promisedBy: new Date(CURRENT_MINUTE + 24 * 60 * MIN),
        initialPromisedBy: new Date(CURRENT_MINUTE + 24 * 60 * MIN),
        createdAt,
        updatedAt: createdAt,
      });
    }
  }
  for (let i = 0; i < rows.length; i += 100) await db.insert(orders).values(rows.slice(i, i + 100));
}

interface Point {
  at: string;
  expected: number;
  low: number;
  high: number;
}

describe('GET /v1/admin/forecast', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await testDatabase();
    await insertIntake(db.database.db);
    // The API alone: no worker takes the orders in the fixture.
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const get = (query = '', headers: Record<string, string> = server.admin) =>
    server.app.inject({ method: 'GET', url: `/v1/admin/forecast${query}`, headers });

  const expectForecast = (body: Record<string, unknown>, horizon: number, step: number) => {
    expect(Object.keys(body).sort()).toEqual([
      'generatedAt',
      'horizonMinutes',
      'points',
      'recommendedReplicas',
    ]);
    expect(body.horizonMinutes).toBe(horizon);
    const generatedAt = Date.parse(body.generatedAt as string);
    expect(body.generatedAt).toBe(new Date(generatedAt).toISOString());
    expect(Math.abs(generatedAt - Date.now())).toBeLessThan(60_000);
    const points = body.points as Point[];
    expect(points).toHaveLength(Math.floor(horizon / step));
    const current = Math.floor(generatedAt / MIN) * MIN;
    expect(Date.parse(points[0].at)).toBe(current + step * MIN);
    expect(Date.parse(points.at(-1)!.at)).toBeLessThanOrEqual(current + horizon * MIN);
    for (const [i, p] of points.entries()) {
      expect(Object.keys(p).sort()).toEqual(['at', 'expected', 'high', 'low']);
      expect(p.at).toBe(new Date(Date.parse(p.at)).toISOString());
      if (i > 0) expect(Date.parse(p.at) - Date.parse(points[i - 1].at)).toBe(step * MIN);
      expect(p.low).toBeGreaterThanOrEqual(0);
      expect(p.low).toBeLessThanOrEqual(p.expected);
      expect(p.expected).toBeLessThanOrEqual(p.high);
    }
    const replicas = body.recommendedReplicas as Record<string, number>;
    expect(Object.keys(replicas).sort()).toEqual([...QUEUE_NAMES].sort());
    for (const n of Object.values(replicas)) {
      expect(Number.isInteger(n)).toBe(true);
      expect(n).toBeGreaterThanOrEqual(1);
    }
    return points;
  };

  it('default horizon: 60 points a minute apart, about the steady two orders a minute', async () => {
    const response = await get();
    expect(response.statusCode, response.body).toBe(200);
    const points = expectForecast(response.json(), 60, 1);
    // Two a minute for three hours (the minute just closed may be empty if a minute turned since).
    for (const p of points) expect(Math.abs(p.expected - PER_MINUTE)).toBeLessThan(1);
  });

  it('horizonMinutes=90 and =1440 (every 5 minutes beyond 180)', async () => {
    const ninety = await get('?horizonMinutes=90');
    expect(ninety.statusCode, ninety.body).toBe(200);
    expectForecast(ninety.json(), 90, 1);
    const day = await get('?horizonMinutes=1440');
    expect(day.statusCode, day.body).toBe(200);
    expectForecast(day.json(), 1440, 5);
  });

  it('400 validation_failed for a horizon out of 60–1440, not an integer, or an unknown field', async () => {
    for (const query of [
      '?horizonMinutes=5',
      '?horizonMinutes=59',
      '?horizonMinutes=1441',
      '?horizonMinutes=60.5',
      '?horizonMinutes=abc',
      '?horizon=60',
      '?horizonMinutes=60&extra=1',
    ]) {
      expectProblem(await get(query), 400, 'validation_failed');
    }
  });

  it('401 without the admin token, and with a wrong one', async () => {
    expectProblem(await get('', {}), 401);
    expectProblem(await get('', { authorization: 'Bearer wrong' }), 401);
  });

  it('the gauges are in /metrics: the next minute expected and the replicas per queue', async () => {
    const text = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    const line = text.split('\n').find((l) => l.startsWith('surgeline_forecast_orders_per_minute '));
    expect(line, 'surgeline_forecast_orders_per_minute in /metrics').toBeDefined();
    expect(Math.abs(Number(line!.split(' ')[1]) - PER_MINUTE)).toBeLessThan(1);
    for (const queue of QUEUE_NAMES) {
      const replicas = text
        .split('\n')
        .find((l) => l.startsWith(`surgeline_recommended_replicas{queue="${queue}"} `));
      expect(replicas, `replicas of ${queue} in /metrics`).toBeDefined();
      expect(Number(replicas!.split(' ')[1])).toBeGreaterThanOrEqual(1);
    }
  });

  it("a stage's job duration is measured from its completed jobs in Redis (defaults for the others)", async () => {
    // No worker of this API-only process serves cancellation: this one does, 150 ms a job.
    const worker = server.ctx.queues.backend.worker(
      'cancellation',
      async () => new Promise((resolve) => setTimeout(resolve, 150)),
      { concurrency: 2 },
    );
    try {
      const [queue] = server.ctx.queues.queuesOf('cancellation');
      for (let i = 0; i < 4; i++) await queue.add('cancel-booking', { shipmentId: randomUUID() });
      await waitFor(async () => (await queue.getCompletedCount()) === 4, 'four completed jobs');
      const seconds = await stageJobSeconds(server.ctx);
      expect(seconds.cancellation).toBeGreaterThanOrEqual(0.14);
      expect(seconds.cancellation).toBeLessThan(2);
      expect(seconds.allocation).toBe(DEFAULT_JOB_SECONDS.allocation);
      expect(seconds.notification).toBe(DEFAULT_JOB_SECONDS.notification);
    } finally {
      await worker.close();
      await worker.disconnect();
    }
  });
});
