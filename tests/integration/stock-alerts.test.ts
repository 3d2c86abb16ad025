import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.js';
import { stockAlerts } from '../../src/db/schema.js';
import { refreshStockAlerts } from '../../src/db/stock-alerts.js';
import { createLogger } from '../../src/logger.js';
import { startStockWatch } from '../../src/workers/stock-watch.js';
import { admin, createShop, createWarehouse, setStock } from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { insertAllocation, insertOrderRow } from '../helpers/stock.js';

interface Alert {
  warehouseId: string;
  sku: string;
  available: number;
  coverHours: number;
  inboundEta: string | null;
  since: string;
}

const HOUR = 3600_000;
const inHours = (h: number) => new Date(Date.now() + h * HOUR).toISOString();

describe('stock alerts (GET /v1/admin/inventory/alerts, the watcher, surgeline_stock_at_risk)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let orderId: string;

  // An API process only (no worker): the alerts change only when a test refreshes them.
  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api' });
    const shop = await createShop(server.app);
    orderId = (await insertOrderRow(server.ctx.db, { shopId: shop.id, status: 'dispatched' })).id;
    await createWarehouse(server.app, 'wh-al-a');
    await createWarehouse(server.app, 'wh-al-b');
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const get = (url: string) => server.app.inject({ url, headers: admin });
  const alerts = async (): Promise<Alert[]> => {
    const response = await get('/v1/admin/inventory/alerts');
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(Object.keys(body)).toEqual(['items']);
    return body.items;
  };
  const alertOf = async (warehouseId: string, sku: string) =>
    (await alerts()).find((a) => a.warehouseId === warehouseId && a.sku === sku);

  /** A stock row with `onHand` on the shelf and `unitsLastHour` allocated 10 minutes ago. */
  const demandRow = async (warehouseId: string, sku: string, onHand: number, unitsLastHour: number) => {
    await setStock(server.app, warehouseId, sku, onHand);
    await insertAllocation(server.ctx.db, {
      orderId,
      warehouseId,
      sku,
      quantity: unitsLastHour,
      minutesAgo: 10,
    });
  };
  const restock = async (warehouseId: string, sku: string, quantity: number, eta: string) => {
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/admin/inventory/restocks',
      headers: admin,
      payload: { warehouseId, sku, quantity, eta },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { id: string };
  };
  const gauge = async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    const lines = (await response.text()).split('\n').filter((l) => l.startsWith('surgeline_stock_at_risk'));
    return Object.fromEntries(
      lines.map((l) => {
        const match = /^surgeline_stock_at_risk\{sku="([^"]+)"\} (\S+)$/.exec(l);
        expect(match, l).not.toBeNull();
        return [match![1], Number(match![2])];
      }),
    );
  };

  it('raises a row whose cover is shorter than STOCK_RISK_HOURS with nothing inbound, and keeps its since', async () => {
    expect(server.config.stockRiskHours).toBe(72);
    expect(await alerts()).toEqual([]);
    // 10 on hand at 20 an hour: half an hour of cover.
    await demandRow('wh-al-a', 'AL-1', 10, 20);
    // 1000 at 10 an hour is 100 hours: enough. 5 with no demand in the hour: no cover, no alert.
    await demandRow('wh-al-a', 'AL-CALM', 1000, 10);
    await setStock(server.app, 'wh-al-a', 'AL-IDLE', 5);
    await insertAllocation(server.ctx.db, {
      orderId,
      warehouseId: 'wh-al-a',
      sku: 'AL-IDLE',
      quantity: 50,
      minutesAgo: 61,
    });
    // 720 at 10 an hour is exactly 72 hours: not shorter, so not at risk.
    await demandRow('wh-al-a', 'AL-EDGE', 720, 10);

    const before = Date.now();
    const first = await alerts();
    const after = Date.now();
    expect(first).toEqual([
      {
        warehouseId: 'wh-al-a',
        sku: 'AL-1',
        available: 10,
        coverHours: 0.5,
        inboundEta: null,
        since: expect.any(String),
      },
    ]);
    const since = Date.parse(first[0].since);
    expect(since).toBeGreaterThanOrEqual(before);
    expect(since).toBeLessThanOrEqual(after);

    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await alertOf('wh-al-a', 'AL-1'))?.since).toBe(first[0].since);
    // Its figures follow the stock; its since stays.
    await setStock(server.app, 'wh-al-a', 'AL-1', 6);
    expect(await alertOf('wh-al-a', 'AL-1')).toMatchObject({
      available: 6,
      coverHours: 0.3,
      since: first[0].since,
    });
  });

  it('with a restock inbound, a row is at risk when its cover is shorter than the time until the ETA', async () => {
    // 30 at 10 an hour: 3 hours. Due in 5 hours: at risk. Due in 2 hours: covered until then.
    await demandRow('wh-al-a', 'AL-2', 30, 10);
    const eta = inHours(5);
    await restock('wh-al-a', 'AL-2', 700, eta);
    await demandRow('wh-al-a', 'AL-3', 30, 10);
    await restock('wh-al-a', 'AL-3', 5, inHours(2));
    // Only the earliest ETA counts: a later restock does not push the horizon out.
    await restock('wh-al-a', 'AL-3', 5, inHours(48));

    const items = await alerts();
    expect(items.map((a) => a.sku)).toEqual(['AL-1', 'AL-2']); // oldest alert first
    expect(items[1]).toEqual({
      warehouseId: 'wh-al-a',
      sku: 'AL-2',
      available: 30,
      coverHours: 3,
      inboundEta: eta,
      since: expect.any(String),
    });
    expect(Date.parse(items[1].since)).toBeGreaterThan(Date.parse(items[0].since));
  });

  it('counts the alert rows per SKU in surgeline_stock_at_risk', async () => {
    await demandRow('wh-al-b', 'AL-1', 1, 10);
    expect((await alerts()).filter((a) => a.sku === 'AL-1').map((a) => a.warehouseId)).toEqual([
      'wh-al-a',
      'wh-al-b',
    ]);
    expect(await gauge()).toEqual({ 'AL-1': 2, 'AL-2': 1 });
  });

  it('clears a row once a restock receipt lifts its cover, keeping the others as they were', async () => {
    const [alOne, alTwo] = (await alerts()).filter((a) => a.warehouseId === 'wh-al-a');
    const list = await get('/v1/admin/inventory/restocks?warehouseId=wh-al-a&sku=AL-2');
    const [inbound] = list.json().items as { id: string }[];
    const received = await server.app.inject({
      method: 'POST',
      url: `/v1/admin/inventory/restocks/${inbound.id}/receive`,
      headers: admin,
    });
    expect(received.statusCode, received.body).toBe(200);
    // 730 at 10 an hour: 73 hours, nothing inbound any more: longer than 72.
    const items = await alerts();
    expect(items.find((a) => a.sku === 'AL-2')).toBeUndefined();
    expect(items.find((a) => a.warehouseId === 'wh-al-a' && a.sku === 'AL-1')?.since).toBe(alOne.since);
    expect(alTwo.sku).toBe('AL-2');
    const rows = await server.ctx.db.select().from(stockAlerts);
    expect(rows.map((r) => `${r.warehouseId}/${r.sku}`).sort()).toEqual(['wh-al-a/AL-1', 'wh-al-b/AL-1']);
    expect(await gauge()).toEqual({ 'AL-1': 2 });

    // At risk again later: a new alert, with a new since.
    await insertAllocation(server.ctx.db, {
      orderId,
      warehouseId: 'wh-al-a',
      sku: 'AL-2',
      quantity: 100,
      minutesAgo: 1,
    });
    const again = await alertOf('wh-al-a', 'AL-2');
    expect(again).toMatchObject({ available: 730, coverHours: 730 / 110, inboundEta: null });
    expect(Date.parse(again!.since)).toBeGreaterThan(Date.parse(alTwo.since));
  });

  it('refreshStockAlerts answers what it raised and cleared; concurrent refreshes raise a row once', async () => {
    await demandRow('wh-al-b', 'AL-CONC', 2, 10);
    const now = new Date();
    const results = await Promise.all([1, 2, 3].map(() => refreshStockAlerts(server.ctx.db, now, 72)));
    const raised = results.flatMap((r) => r.raised);
    expect(raised).toEqual([
      {
        warehouseId: 'wh-al-b',
        sku: 'AL-CONC',
        available: 2,
        coverHours: 0.2,
        inboundEta: null,
        since: now,
      },
    ]);
    for (const r of results) expect(r.current.map((a) => a.sku)).toContain('AL-CONC');

    await setStock(server.app, 'wh-al-b', 'AL-CONC', 100_000);
    const cleared = await Promise.all([1, 2].map(() => refreshStockAlerts(server.ctx.db, new Date(), 72)));
    expect(cleared.flatMap((r) => r.cleared)).toEqual([
      { warehouseId: 'wh-al-b', sku: 'AL-CONC', since: now },
    ]);
    expect(cleared.flatMap((r) => r.raised)).toEqual([]);
  });

  it('the watcher logs a newly raised alert once as a warn stock_at_risk line, and its clearing at info', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    const ctx: Context = { ...server.ctx, log };
    const watch = startStockWatch(ctx, 30);
    const about = (event: string) => lines.filter((l) => l.event === event && l.sku === 'AL-W');
    try {
      await demandRow('wh-al-b', 'AL-W', 5, 10);
      await waitFor(async () => about('stock_at_risk').length > 0, 'the watcher to raise AL-W', 10_000);
      // Several more runs: the alert stands, nothing more is logged about it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(about('stock_at_risk')).toEqual([
        expect.objectContaining({
          level: 40,
          msg: 'stock at risk',
          event: 'stock_at_risk',
          warehouseId: 'wh-al-b',
          sku: 'AL-W',
          available: 5,
          coverHours: 0.5,
          inboundEta: null,
        }),
      ]);
      // Alerts raised before the watcher started are not news.
      expect(lines.filter((l) => l.event === 'stock_at_risk' && l.sku !== 'AL-W')).toEqual([]);

      await setStock(server.app, 'wh-al-b', 'AL-W', 10_000);
      await waitFor(async () => about('stock_risk_cleared').length > 0, 'the watcher to clear AL-W', 10_000);
      expect(about('stock_risk_cleared')).toEqual([
        expect.objectContaining({ level: 30, event: 'stock_risk_cleared', warehouseId: 'wh-al-b' }),
      ]);
    } finally {
      await watch.stop();
    }
  });

  it('a watcher run that fails is logged as a warning and tried again', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    let calls = 0;
    const broken = {
      transaction: async () => {
        calls++;
        throw new Error('database away');
      },
    } as unknown as Context['db'];
    const watch = startStockWatch({ ...server.ctx, log, db: broken }, 20);
    try {
      await waitFor(async () => calls >= 2, 'a second run after a failure', 5_000);
      expect(
        lines.filter((l) => l.msg === 'stock watch failed; will try again').length,
      ).toBeGreaterThanOrEqual(1);
      expect(lines.every((l) => l.level === 40)).toBe(true);
    } finally {
      await watch.stop();
    }
  });
});
