/**
 * The operations page in a real browser (Debian's Chromium driven by playwright-core) against the
 * whole engine in-process: the scorecard shows what GET /v1/admin/kpis answers, a dead letter's
 * Retry re-drives the order, Bull Board opens on the same session, and with Redis away the queue
 * chart says so while the other panels render. Screenshots go to .reports/screenshots/ (CI
 * artifacts); UPDATE_DOCS_SCREENSHOT=1 also writes docs/ops-page.png, the README's picture.
 * The HTTP-level checks of the same page are tests/integration/ops-page.test.ts. The page does
 * the same on either database, so this (slow) file runs once, on the server.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  admin,
  orderBody,
  placeOrder,
  seedShopWithStock,
  startSimulatedCarrier,
  storedStatus,
} from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  startTestServer,
  testDatabase,
  usesPostgresQueues,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = '.reports/screenshots';
const CLOSED_REDIS = 'redis://127.0.0.1:6390';
const LOCKED_REGION = 'wuhan-jiangan';

const percent = (rate: number | null) => (rate === null ? '—' : `${(rate * 100).toFixed(1)} %`);

describe('the operations page in a browser', () => {
  let db: TestDatabase;
  let server: TestServer;
  let down: TestServer | undefined;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };
  let failedId: string;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;
  const problems: string[] = []; // console errors (a CSP violation is one) and uncaught exceptions

  const inject = async (url: string) => {
    const response = await server.app.inject({ url, headers: admin });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const waitStored = (id: string, status: string) =>
    waitFor(async () => (await storedStatus(db.database.db, id)) === status, `order ${id} ${status}`, 45_000);

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true);
    mkdirSync(SHOTS, { recursive: true });
    db = await testDatabase();
    server = await startTestServer(db.database, {
      env: {
        DISPATCH_ATTEMPTS: '2',
        // The breaker must not open on the failure made on purpose here.
        BREAKER_FAILURE_THRESHOLD: '10000',
        BREAKER_MINIMUM_CALLS: '100000',
      },
    });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'sim-ops',
      webhookSecret: 'ops-carrier-secret',
      apiKey: 'sim-ops-key',
      eventsBaseUrl: server.url,
      progress: { inTransitAfterMs: 100, deliveredAfterMs: 300 },
    });
    shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 1_000_000 },
      warehouseId: 'wh-ops',
      stock: { 'MASK-N95': 10 },
    });
    // One order delivered, one failed carrier_failed (the carrier answering 5xx to every call).
    const delivered = await placeOrder(server.app, shop.apiKey, orderBody());
    await waitStored(delivered.id, 'delivered');
    carrier.set({ failureRate: 1 });
    failedId = (await placeOrder(server.app, shop.apiKey, orderBody())).id;
    await waitStored(failedId, 'failed');
    const lockdown = await server.app.inject({
      method: 'PUT',
      url: `/v1/admin/regions/${LOCKED_REGION}/lockdown`,
      headers: admin,
      payload: { reason: 'district sealed' },
    });
    expect(lockdown.statusCode, lockdown.body).toBe(200);

    profile = mkdtempSync(join(tmpdir(), 'surgeline-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true, // playwright passes --headless itself
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 1000 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('console', (message) => {
      // Only the operations page's (Bull Board fetches web fonts from elsewhere); the browser
      // logs each 503 it is answered (the Redis-away case, on purpose) as an error.
      if (new URL(page.url()).pathname !== '/admin') return;
      if (message.type() === 'error' && !/status of 503/.test(message.text()))
        problems.push(`console: ${message.text()} (${message.location().url} on ${page.url()})`);
    });
    page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await carrier?.close();
    await down?.close();
    await server?.close();
    await db?.drop();
  });

  it('opens with ?token= once (then at /admin), and shows the scorecard GET /v1/admin/kpis answers', async () => {
    await page.goto(`${server.url}/admin?token=${encodeURIComponent(ADMIN_TOKEN)}`);
    expect(new URL(page.url()).pathname).toBe('/admin');
    expect(page.url()).not.toContain('token');
    const kpis = await inject('/v1/admin/kpis?window=24h');
    expect(kpis).toMatchObject({ onTimeRate: 1, errorRate: 0.5 });
    const onTime = page.getByTestId('kpi-onTimeRate');
    await expect
      .poll(() => onTime.getAttribute('data-value'), { timeout: 15_000 })
      .toBe(String(kpis.onTimeRate));
    for (const key of ['onTimeRate', 'errorRate', 'satisfaction'] as const) {
      expect(await page.getByTestId(`kpi-${key}`).getAttribute('data-value')).toBe(String(kpis[key]));
      expect(await page.getByTestId(`kpi-${key}`).textContent()).toBe(percent(kpis[key]));
      expect(await page.getByTestId(`kpi-${key}-target`).getAttribute('data-value')).toBe(
        String(kpis.targets[key]),
      );
    }
    expect(await page.getByTestId('kpi-errorRate-card').getAttribute('class')).toContain('miss');
    expect(await page.getByTestId('kpi-onTimeRate-card').getAttribute('class')).toContain('ok');
    expect(await page.getByTestId('kpi-ordersPerMinute').getAttribute('data-value')).toBe(
      String(kpis.ordersPerMinute),
    );
  });

  it('charts the last hour and lists carriers, lockdowns, dead letters and stock alerts', async () => {
    await page.locator('#throughput-chart canvas').waitFor();
    await page.locator('#queues-chart canvas').waitFor();
    expect(await page.locator('#throughput-chart .u-legend').textContent()).toContain('received');
    expect(await page.locator('#queues-chart .u-legend').textContent()).toContain('allocation');

    const carrierRow = page.locator('[data-testid=carrier][data-carrier-id=sim-ops]');
    await carrierRow.waitFor();
    const { items } = await inject('/v1/admin/carriers');
    expect(await carrierRow.getByTestId('breaker').textContent()).toBe(
      items[0].breaker.state.replace('_', '-'),
    );
    expect(await carrierRow.getByTestId('success-rate').textContent()).toBe(percent(items[0].successRate));

    await expect
      .poll(() => page.getByTestId('lockdown').allTextContents(), { timeout: 15_000 })
      .toEqual([expect.stringContaining(LOCKED_REGION)]);
    await page.locator(`[data-testid=dead-letter][data-order-id="${failedId}"]`).waitFor();
    // 10 on hand, 2 + 2 allocated in the last hour: a few hours of cover, under the 72 h risk line.
    const alerts = await inject('/v1/admin/inventory/alerts');
    expect(await page.getByTestId('stock-alert').count()).toBe(alerts.items.length);
    expect(await page.getByTestId('panel-overdue').textContent()).toContain('No parcel is overdue.');
    for (const id of ['kpis', 'throughput', 'queues', 'carriers', 'lockdowns', 'dead-letters', 'alerts']) {
      expect(await page.getByTestId(`state-${id}`).getAttribute('data-down'), id).not.toBe('true');
    }
    await page.screenshot({ path: join(SHOTS, 'ops-page.png'), fullPage: true });
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1')
      await page.screenshot({ path: 'docs/ops-page.png', fullPage: true });
  });

  it("a dead letter's Retry re-drives the order: it leaves the list and is delivered", async () => {
    carrier.set({ failureRate: 0 });
    const row = page.locator(`[data-testid=dead-letter][data-order-id="${failedId}"]`);
    await row.getByTestId('retry').click();
    await row.waitFor({ state: 'detached' });
    await expect
      .poll(() => page.getByTestId('state-dead-letters').textContent())
      .toContain(`Order ${failedId} re-driven: attempt 2`);
    expect(await page.getByTestId('panel-dead-letters').textContent()).toContain('No dead letter.');
    await waitStored(failedId, 'delivered');
    expect((await inject('/v1/admin/dead-letters')).items).toEqual([]);
  });

  it('Bull Board opens on the same session and shows the queues', async () => {
    await page.goto(`${server.url}/admin/queues`);
    for (const name of ['allocation.essential', 'dispatch.standard', 'notification.sms']) {
      await page.getByText(name, { exact: true }).first().waitFor({ timeout: 15_000 });
    }
    await page.screenshot({ path: join(SHOTS, 'bull-board.png') });
  });

  it('with Redis away the queue chart says Redis is not answering (with queues on PostgreSQL it charts on); the other panels render', async () => {
    down = await startTestServer(db.database, { role: 'api', env: { REDIS_URL: CLOSED_REDIS } });
    // Cookies are per host, not port: the session opened above (same token) is valid here too.
    await page.goto(`${down.url}/admin`);
    // QUEUE_BACKEND=postgres uses no Redis: a dead REDIS_URL changes nothing.
    const onPostgres = usesPostgresQueues();
    await expect
      .poll(() => page.getByTestId('state-queues').textContent(), { timeout: 15_000 })
      .toMatch(onPostgres ? /^Now: allocation \d+/ : /^Redis is not answering/);
    expect(await page.getByTestId('state-queues').getAttribute('data-down')).toBe(String(!onPostgres));
    await page.locator('[data-testid=carrier][data-carrier-id=sim-ops]').waitFor();
    await expect.poll(() => page.getByTestId('kpi-onTimeRate').getAttribute('data-value')).not.toBeNull();
    for (const id of ['kpis', 'throughput', 'carriers', 'lockdowns', 'dead-letters']) {
      expect(await page.getByTestId(`state-${id}`).getAttribute('data-down'), id).toBe('false');
    }
    await page.screenshot({ path: join(SHOTS, 'ops-page-redis-away.png'), fullPage: true });
  });

  it('ran under its CSP without a console error or an uncaught exception', () => {
    expect(problems).toEqual([]);
  });
});
