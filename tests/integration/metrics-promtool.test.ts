/**
 * /metrics is what Prometheus scrapes: `promtool check metrics` (Prometheus' own linter) must find
 * nothing to say about it — names, HELP, units, counters ending in _total — once an order went
 * through the pipeline, so every labelled family has samples. promtool comes with the `prometheus`
 * Debian package (.ci/run installs it when missing; PROMTOOL names another binary); without it
 * the test fails, saying what to install.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  newKey,
  orderBody,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';

const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const hasPromtool = spawnSync(PROMTOOL, ['--version']).status === 0;

describe('/metrics passes promtool check metrics', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };

  beforeAll(async () => {
    expect(hasPromtool, `${PROMTOOL} is missing: apt-get install -y prometheus`).toBe(true);
    db = await testDatabase();
    server = await startTestServer(db.database);
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'promtool-carrier',
      webhookSecret: 'promtool-secret',
      eventsBaseUrl: server.url,
      progress: { inTransitAfterMs: 100, deliveredAfterMs: 200 },
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-prom', stock: { 'MASK-N95': 10 } });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  it('exits 0 and prints no lint problem', async () => {
    const posted = await fetch(`${server.url}/v1/orders`, {
      method: 'POST',
      headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
      body: JSON.stringify(orderBody()),
    });
    expect(posted.status).toBe(202);
    const { id } = await posted.json();
    // Delivered: the KPI gauges and every stage's job histogram have a value.
    await waitForOrderStatus(server.app, shop.apiKey, id, 'delivered');

    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('surgeline_orders_total{status="delivered"}');
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error, `${PROMTOOL} did not run`).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });
});
