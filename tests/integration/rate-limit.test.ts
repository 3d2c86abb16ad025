import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orders } from '../../src/db/schema.js';
import { createShop, newKey, orderBody, shopHeaders } from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  uniquePrefix,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const LIMIT = 3;

describe("each shop's rate limit", () => {
  let db: TestDatabase;
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    db = await testDatabase();
    // Two API processes of one deployment: one database, one Redis prefix.
    const prefix = uniquePrefix();
    first = await startTestServer(db.database, { env: { QUEUE_PREFIX: prefix } });
    second = await startTestServer(db.database, { role: 'api', env: { QUEUE_PREFIX: prefix } });
  });

  afterAll(async () => {
    // Reverse order of start: each close hands the database back to the one before.
    await second?.close();
    await first?.close();
    await db?.drop();
  });

  const listOrders = (server: TestServer, apiKey: string) =>
    fetch(`${server.url}/v1/orders`, { headers: shopHeaders(apiKey) });

  function limitHeaders(response: Response) {
    return {
      limit: response.headers.get('ratelimit-limit'),
      remaining: response.headers.get('ratelimit-remaining'),
      reset: response.headers.get('ratelimit-reset'),
    };
  }

  it(`accepts ${LIMIT} requests a minute with RateLimit-* headers, then answers 429 with Retry-After`, async () => {
    const shop = await createShop(first.app, { rateLimitPerMinute: LIMIT });
    for (let i = 1; i <= LIMIT; i++) {
      const response = await listOrders(first, shop.apiKey);
      expect(response.status).toBe(200);
      const headers = limitHeaders(response);
      expect(headers.limit).toBe(String(LIMIT));
      expect(headers.remaining).toBe(String(LIMIT - i));
      expect(headers.reset).toMatch(/^\d+$/);
      expect(Number(headers.reset)).toBeLessThanOrEqual(60);
      for (const name of response.headers.keys()) expect(name).not.toMatch(/^x-ratelimit/);
    }

    // The 4th request, whatever the route, is over the limit.
    const refused = await fetch(`${first.url}/v1/orders`, {
      method: 'POST',
      headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
      body: JSON.stringify(orderBody()),
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = await refused.json();
    expect(problem).toMatchObject({
      status: 429,
      code: 'rate_limited',
      type: expect.any(String),
      title: expect.any(String),
    });
    const retryAfter = refused.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect(limitHeaders(refused)).toMatchObject({ limit: String(LIMIT), remaining: '0' });
    expect(limitHeaders(refused).reset).toMatch(/^\d+$/);
    for (const name of refused.headers.keys()) expect(name).not.toMatch(/^x-ratelimit/);

    // Still refused: a refused request does not open the window again.
    expect((await listOrders(first, shop.apiKey)).status).toBe(429);
    // Nothing was ordered by the refused POST.
    expect(await first.ctx.db.select().from(orders).where(eq(orders.shopId, shop.id))).toEqual([]);
  });

  it("does not touch another shop's allowance", async () => {
    const busy = await createShop(first.app, { rateLimitPerMinute: LIMIT });
    const calm = await createShop(first.app, { rateLimitPerMinute: LIMIT });
    for (let i = 0; i < LIMIT + 2; i++) await listOrders(first, busy.apiKey);
    expect((await listOrders(first, busy.apiKey)).status).toBe(429);

    for (let i = 1; i <= LIMIT; i++) {
      const response = await listOrders(first, calm.apiKey);
      expect(response.status).toBe(200);
      expect(response.headers.get('ratelimit-remaining')).toBe(String(LIMIT - i));
    }
    // A shop on the default limit (600) is far from it.
    const roomy = await createShop(first.app);
    const response = await listOrders(first, roomy.apiKey);
    expect(response.status).toBe(200);
    expect(response.headers.get('ratelimit-limit')).toBe('600');
    expect(response.headers.get('ratelimit-remaining')).toBe('599');
  });

  it('counts requests across API processes sharing one Redis prefix', async () => {
    const shop = await createShop(first.app, { rateLimitPerMinute: LIMIT });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const server = i % 2 === 0 ? first : second;
      statuses.push((await listOrders(server, shop.apiKey)).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(8 - LIMIT);
    expect(statuses.slice(0, LIMIT)).toEqual([200, 200, 200]);

    // At the same instant, too: a burst spread over both processes lets exactly LIMIT through.
    const burstShop = await createShop(second.app, { rateLimitPerMinute: LIMIT });
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => listOrders(i % 2 === 0 ? first : second, burstShop.apiKey)),
    );
    const burstStatuses = burst.map((r) => r.status);
    expect(burstStatuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(burstStatuses.filter((s) => s === 429)).toHaveLength(12 - LIMIT);
  });

  it('does not count requests that fail authentication against a shop', async () => {
    const shop = await createShop(first.app, { rateLimitPerMinute: LIMIT });
    for (let i = 0; i < 5; i++) {
      const response = await listOrders(first, shop.apiKey.slice(0, -2) + 'xx');
      expect(response.status).toBe(401);
    }
    const response = await listOrders(second, shop.apiKey);
    expect(response.status).toBe(200);
    expect(response.headers.get('ratelimit-remaining')).toBe(String(LIMIT - 1));
  });
});
