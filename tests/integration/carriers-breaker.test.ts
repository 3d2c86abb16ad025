import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createCarrier } from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';

const CLOSED_REDIS = 'redis://127.0.0.1:6390';
const COOL_DOWN_MS = 500;

interface CarrierItem {
  id: string;
  breaker: { state: string; since: string | null };
}

/** The value of surgeline_carrier_breaker_state for a carrier, or undefined when absent. */
function gauge(text: string, carrier: string): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`surgeline_carrier_breaker_state{carrier="${carrier}"}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('carrier breakers in the admin API and the metrics', () => {
  let db: TestDatabase;
  let server: TestServer;

  const list = async (target: TestServer = server) => {
    const response = await fetch(`${target.url}/v1/admin/carriers?limit=100`, {
      headers: admin,
      signal: AbortSignal.timeout(15_000),
    });
    expect(response.status).toBe(200);
    const items = (await response.json()).items as CarrierItem[];
    return (id: string) => items.find((c) => c.id === id)!.breaker;
  };
  const scrape = async (target: TestServer = server) => {
    const response = await fetch(`${target.url}/metrics`, { signal: AbortSignal.timeout(15_000) });
    expect(response.status).toBe(200);
    return response.text();
  };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { env: { BREAKER_COOL_DOWN_MS: String(COOL_DOWN_MS) } });
    // Nothing is ever booked here: the base URL only has to be valid.
    for (const id of ['cb-steady', 'cb-flaky'])
      await createCarrier(server.app, { id, baseUrl: 'http://127.0.0.1:9/' });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  it('a carrier whose breaker never changed is closed with since null, and its gauge 0', async () => {
    const breaker = await list();
    expect(breaker('cb-steady')).toEqual({ state: 'closed', since: null });
    expect(breaker('cb-flaky')).toEqual({ state: 'closed', since: null });
    const text = await scrape();
    expect(text).toMatch(/^# TYPE surgeline_carrier_breaker_state gauge$/m);
    expect(gauge(text, 'cb-steady')).toBe(0);
    expect(gauge(text, 'cb-flaky')).toBe(0);
  });

  it('5 failures in a row open it: the list shows open with its since, the gauge 2', async () => {
    const views = [];
    for (let i = 0; i < 5; i++) views.push(await server.ctx.breakers.record('cb-flaky', 'failure'));
    expect(views.map((v) => v.state)).toEqual(['closed', 'closed', 'closed', 'closed', 'open']);
    const since = views[4].since!.toISOString();
    const breaker = await list();
    expect(breaker('cb-flaky')).toEqual({ state: 'open', since });
    expect(breaker('cb-steady')).toEqual({ state: 'closed', since: null });
    const text = await scrape();
    expect(gauge(text, 'cb-flaky')).toBe(2);
    expect(gauge(text, 'cb-steady')).toBe(0);
  });

  it('after BREAKER_COOL_DOWN_MS it reads half_open (gauge 1), and two good probes close it (gauge 0)', async () => {
    const opened = (await list())('cb-flaky');
    expect(opened.state).toBe('open');
    await new Promise((resolve) => setTimeout(resolve, COOL_DOWN_MS + 100));
    const half = (await list())('cb-flaky');
    expect(half).toEqual({
      state: 'half_open',
      since: new Date(Date.parse(opened.since!) + COOL_DOWN_MS).toISOString(),
    });
    expect(gauge(await scrape(), 'cb-flaky')).toBe(1);

    for (let i = 0; i < 2; i++) {
      expect(await server.ctx.breakers.allow('cb-flaky')).toBe(true);
      await server.ctx.breakers.record('cb-flaky', 'success');
    }
    const closed = (await list())('cb-flaky');
    expect(closed.state).toBe('closed');
    expect(Date.parse(closed.since!)).toBeGreaterThan(Date.parse(half.since!));
    expect(gauge(await scrape(), 'cb-flaky')).toBe(0);
  });

  describe('with Redis unreachable', () => {
    let down: TestServer;

    beforeAll(async () => {
      down = await startTestServer(db.database, { role: 'api', env: { REDIS_URL: CLOSED_REDIS } });
    });

    afterAll(async () => {
      await down?.close();
    });

    it('the carriers list still answers, with the states last seen (none: closed, since null)', async () => {
      const breaker = await list(down);
      expect(breaker('cb-steady')).toEqual({ state: 'closed', since: null });
      expect(breaker('cb-flaky')).toEqual({ state: 'closed', since: null });
    });

    it('the scrape still answers, the breaker gauge left empty', async () => {
      const text = await scrape(down);
      expect(text).toContain('surgeline_http_requests_total');
      expect(gauge(text, 'cb-steady')).toBeUndefined();
      expect(gauge(text, 'cb-flaky')).toBeUndefined();
    });
  });
});
