/**
 * The operations page over HTTP (the browser test is tests/e2e/ops-page.pg.test.ts): its auth
 * (the admin token, or the Bull Board session, which /v1/admin/* accepts too, with a same-origin
 * header required of a cookie-authenticated POST), its headers and assets, and the two history
 * endpoints it charts, on either database.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_COOKIE } from '../../src/api/plugins/auth.js';
import { orderBody, placeOrder, seedShopWithStock } from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { answerOf, expectProblem } from '../helpers/problem.js';

const CLOSED_REDIS = 'redis://127.0.0.1:6390';

interface Cookie {
  pair: string;
  value: string;
  attributes: string[];
}

function cookiesOf(response: Response): Cookie[] {
  return response.headers.getSetCookie().map((raw) => {
    const [pair, ...attributes] = raw.split(';').map((p) => p.trim());
    return {
      pair,
      value: pair.slice(pair.indexOf('=') + 1),
      attributes: attributes.map((a) => a.toLowerCase()),
    };
  });
}

describe('the operations page: auth, headers, assets and history', () => {
  let db: TestDatabase;
  let server: TestServer;
  let down: TestServer | undefined;
  let session: string; // `surgeline_admin=<value>`

  const get = (path: string, headers: Record<string, string> = {}, target = () => server) =>
    fetch(`${target().url}${path}`, { headers, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
  const post = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers, signal: AbortSignal.timeout(15_000) });

  beforeAll(async () => {
    db = await testDatabase();
    // API only: orders wait in the allocation queue, so its depth is known.
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterAll(async () => {
    await down?.close();
    await server?.close();
    await db?.drop();
  });

  it('without the token: 401 problem+json for the page, its assets and a wrong ?token=', async () => {
    for (const path of [
      '/admin',
      '/admin/assets/ops.js',
      '/admin/assets/uplot.js',
      '/admin?token=wrong-token',
    ]) {
      const response = await get(path);
      expectProblem(await answerOf(response), 401, 'unauthorized');
      expect(response.headers.getSetCookie()).toEqual([]);
    }
  });

  it('?token= once: a 303 to /admin setting the same signed session under /admin and /v1/admin', async () => {
    const response = await get(`/admin?token=${encodeURIComponent(ADMIN_TOKEN)}`);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/admin');
    const cookies = cookiesOf(response);
    expect(cookies.map((c) => c.attributes.find((a) => a.startsWith('path=')))).toEqual([
      'path=/admin',
      'path=/v1/admin',
    ]);
    expect(cookies[0].pair).toBe(cookies[1].pair);
    for (const c of cookies) {
      expect(c.pair).toMatch(new RegExp(`^${ADMIN_COOKIE}=\\d+\\.[0-9a-f]{64}$`));
      expect(c.attributes).toEqual(expect.arrayContaining(['httponly', 'samesite=strict']));
      expect(c.pair).not.toContain(ADMIN_TOKEN);
    }
    session = cookies[0].pair;
  });

  it('the cookie opens the page: static HTML under a strict CSP, the session mirrored to /v1/admin', async () => {
    const response = await get('/admin', { cookie: session });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const html = await response.text();
    expect(html).toContain('<script src="/admin/assets/ops.js" defer></script>');
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/); // no inline script
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere
    const [mirror] = cookiesOf(response);
    expect(mirror.pair).toBe(session); // same value, so the same expiry: no session extended
    expect(mirror.attributes).toContain('path=/v1/admin');
    // The bearer opens it too.
    expect((await get('/admin', { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(200);
    // A query field the page does not take.
    expectProblem(await answerOf(await get('/admin?tokn=x', { cookie: session })), 400, 'validation_failed');
  });

  it('serves the chart library and the page script from this server, revalidated by ETag', async () => {
    for (const [name, type] of [
      ['uplot.js', /^text\/javascript/],
      ['uplot.css', /^text\/css/],
      ['ops.js', /^text\/javascript/],
      ['ops.css', /^text\/css/],
    ] as const) {
      const response = await get(`/admin/assets/${name}`, { cookie: session });
      expect(response.status, name).toBe(200);
      expect(response.headers.get('content-type')).toMatch(type);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const etag = response.headers.get('etag') as string;
      expect(etag).toMatch(/^"[\w-]+"$/);
      expect((await response.text()).length).toBeGreaterThan(100);
      const again = await get(`/admin/assets/${name}`, { cookie: session, 'if-none-match': etag });
      expect(again.status).toBe(304);
    }
    expect((await get('/admin/assets/uplot.js', { cookie: session })).headers.get('content-type')).toMatch(
      /javascript/,
    );
    expectProblem(await answerOf(await get('/admin/assets/nope.js', { cookie: session })), 404, 'not_found');
  });

  it('/v1/admin/* accepts the session cookie, never ?token=, and a wrong bearer is not rescued by it', async () => {
    expect((await get('/v1/admin/kpis', { cookie: session })).status).toBe(200);
    expect((await get('/v1/admin/dead-letters', { cookie: `other=1; ${session}` })).status).toBe(200);
    expectProblem(await answerOf(await get('/v1/admin/kpis')), 401, 'unauthorized');
    expectProblem(
      await answerOf(await get(`/v1/admin/kpis?token=${encodeURIComponent(ADMIN_TOKEN)}`)),
      401,
      'unauthorized',
    );
    const [expiry, mac] = session.slice(ADMIN_COOKIE.length + 1).split('.');
    const forged = `${ADMIN_COOKIE}=${Number(expiry) + 3600}.${mac}`;
    expectProblem(await answerOf(await get('/v1/admin/kpis', { cookie: forged })), 401, 'unauthorized');
    expectProblem(
      await answerOf(await get('/v1/admin/kpis', { cookie: session, authorization: 'Bearer wrong' })),
      401,
      'unauthorized',
    );
  });

  it('a POST carried by the cookie needs X-Surgeline-Admin: 1 (403 without); the bearer needs none', async () => {
    const path = `/v1/admin/orders/${randomUUID()}/retry`;
    const refused = expectProblem(
      await answerOf(await post(path, { cookie: session })),
      403,
      'same_origin_required',
    );
    expect(refused.detail).toContain('X-Surgeline-Admin');
    expectProblem(await answerOf(await post(path, { cookie: session, 'x-surgeline-admin': 'yes' })), 403);
    // Past auth: the order does not exist.
    expectProblem(await answerOf(await post(path, { cookie: session, 'x-surgeline-admin': '1' })), 404);
    expectProblem(await answerOf(await post(path, { authorization: `Bearer ${ADMIN_TOKEN}` })), 404);
    expectProblem(await answerOf(await post(path)), 401);
  });

  it('history: orders per minute over the last hour, and queue depths sampled by this process', async () => {
    const shop = await seedShopWithStock(server.app, { warehouseId: 'wh-ops', stock: { 'MASK-N95': 50 } });
    await placeOrder(server.app, shop.apiKey, orderBody());
    await placeOrder(server.app, shop.apiKey, orderBody());

    const throughput = await get('/v1/admin/overview/throughput', { cookie: session });
    expect(throughput.status).toBe(200);
    const { minutes } = (await throughput.json()) as {
      minutes: { at: string; received: number; delivered: number; failed: number }[];
    };
    expect(minutes).toHaveLength(60);
    const starts = minutes.map((m) => Date.parse(m.at));
    for (let i = 1; i < starts.length; i++) expect(starts[i] - starts[i - 1]).toBe(60_000);
    expect(Date.now() - starts[59]).toBeLessThan(61_000 + 5_000);
    // Both orders in the last minute or two (the minute may have turned in between).
    expect(minutes.slice(-2).reduce((sum, m) => sum + m.received, 0)).toBe(2);
    expect(minutes.every((m) => m.delivered === 0 && m.failed === 0)).toBe(true);

    const depths = await waitFor(
      async () => {
        const response = await get('/v1/admin/overview/queue-depths', { cookie: session });
        expect(response.status).toBe(200);
        const body = (await response.json()) as {
          intervalSeconds: number;
          samples: { at: string; depths: Record<string, number> }[];
        };
        return body.samples.at(-1)?.depths.allocation === 2 ? body : undefined;
      },
      'a reading with both orders waiting',
      40_000,
    );
    expect(depths.intervalSeconds).toBe(15);
    expect(Object.keys(depths.samples.at(-1)!.depths)).toEqual(
      expect.arrayContaining(['allocation', 'dispatch', 'notification']),
    );
    expectProblem(
      await answerOf(await get('/v1/admin/overview/throughput?minutes=5', { cookie: session })),
      400,
      'validation_failed',
    );
  });

  it('the OpenAPI document lists the history endpoints, the cookie scheme and the 403 of admin writes', async () => {
    const doc = (await (await get('/docs/json')).json()) as {
      paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, { in?: string; name?: string }> };
    };
    expect(doc.paths['/v1/admin/overview/throughput']?.get).toBeDefined();
    expect(doc.paths['/v1/admin/overview/queue-depths']?.get).toBeDefined();
    expect(doc.paths['/admin']).toBeUndefined(); // a page, not an API
    expect(doc.components.securitySchemes.adminSession).toMatchObject({ in: 'cookie', name: ADMIN_COOKIE });
    const retry = doc.paths['/v1/admin/orders/{id}/retry'].post;
    expect(retry.security).toEqual([{ adminToken: [] }, { adminSession: [] }]);
    expect(Object.keys(retry.responses)).toContain('403');
    expect(Object.keys(doc.paths['/v1/admin/kpis'].get.responses)).not.toContain('403');
  });

  it('with Redis away: the queue history says so (503 naming Redis), the rest of the page still answers', async () => {
    down = await startTestServer(db.database, { role: 'api', env: { REDIS_URL: CLOSED_REDIS } });
    const target = () => down!;
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const queues = await get('/v1/admin/overview/queue-depths', auth, target);
    const problem = expectProblem(await answerOf(queues), 503, 'unavailable');
    expect(problem.detail).toMatch(/Redis/);
    expect(queues.headers.get('retry-after')).toBe('5');
    expect((await get('/v1/admin/overview/throughput', auth, target)).status).toBe(200);
    expect((await get('/v1/admin/kpis', auth, target)).status).toBe(200);
    expect((await get('/admin', auth, target)).status).toBe(200);
  });
});
