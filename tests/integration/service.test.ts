import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orders } from '../../src/db/schema.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  newKey,
  orderBody,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  startTestServer,
  testDatabase,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { answerOf, expectProblem } from '../helpers/problem.js';

const SECRET = 'service-carrier-secret';
const CLOSED_REDIS = 'redis://127.0.0.1:6390';
const QUEUES = ['allocation', 'dispatch', 'notification'];

function expectRetryAfter(response: Response) {
  const retryAfter = response.headers.get('retry-after');
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThan(0);
}

/** Lines of a metric family whose labels include every given label. */
function samples(text: string, name: string, labels: Record<string, string> = {}): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)));
}

describe('service endpoints', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { id: string; apiKey: string; webhookSecret: string };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'svc-carrier',
      webhookSecret: SECRET,
      progress: false,
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-svc', stock: { 'MASK-N95': 100 } });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  describe('health', () => {
    it('/healthz answers 200 without auth', async () => {
      const response = await fetch(`${server.url}/healthz`);
      expect(response.status).toBe(200);
    });

    it('/readyz answers 200 when Redis and the database answer', async () => {
      const response = await fetch(`${server.url}/readyz`);
      expect(response.status).toBe(200);
    });
  });

  describe('with Redis unreachable', () => {
    let down: TestServer;

    beforeAll(async () => {
      // An API process (the same database, its Redis at a closed port).
      down = await startTestServer(db.database, { role: 'api', env: { REDIS_URL: CLOSED_REDIS } });
    });

    afterAll(async () => {
      await down?.close();
    });

    it('stays alive: /healthz 200, /readyz 503 problem+json with Retry-After', async () => {
      expect((await fetch(`${down.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${down.url}/readyz`);
      expectProblem(await answerOf(ready), 503);
      expectRetryAfter(ready);
      // The healthy process is not affected by its neighbour.
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    });

    it('answers an order 503 with Retry-After, or 202 with the order committed — never 500 or a hang', async () => {
      const body = orderBody();
      const response = await fetch(`${down.url}/v1/orders`, {
        method: 'POST',
        headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      expect([202, 503]).toContain(response.status);
      if (response.status === 503) {
        expectProblem(await answerOf(response), 503);
        expectRetryAfter(response);
        const stored = await server.ctx.db
          .select()
          .from(orders)
          .where(eq(orders.externalId, body.externalId));
        expect(stored).toEqual([]);
      } else {
        const accepted = await response.json();
        const [stored] = await server.ctx.db.select().from(orders).where(eq(orders.id, accepted.id));
        expect(stored?.externalId).toBe(body.externalId);
      }

      // A read that needs Redis (the shop's rate limit) is answered the same way.
      const list = await fetch(`${down.url}/v1/orders`, {
        headers: shopHeaders(shop.apiKey),
        signal: AbortSignal.timeout(15_000),
      });
      expect([200, 503]).toContain(list.status);
      if (list.status === 503) expectRetryAfter(list);

      // Metrics still scrape.
      const metrics = await fetch(`${down.url}/metrics`, { signal: AbortSignal.timeout(15_000) });
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('surgeline_http_requests_total');

      // Bull Board's queue API needs Redis: 503, not a hang.
      const board = await fetch(`${down.url}/admin/queues/api/queues`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        signal: AbortSignal.timeout(15_000),
      });
      expectProblem(await answerOf(board), 503);
      expectRetryAfter(board);
    });

    it('still serves what needs only the database', async () => {
      const carriers = await fetch(`${down.url}/v1/admin/carriers`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        signal: AbortSignal.timeout(15_000),
      });
      expect(carriers.status).toBe(200);
      expect((await carriers.json()).items.map((c: { id: string }) => c.id)).toContain('svc-carrier');
    });
  });

  describe('metrics', () => {
    it('serves Prometheus text with the contract metric families and labels', async () => {
      // Some traffic and one order through allocation and dispatch, so every family has samples.
      await fetch(`${server.url}/healthz`);
      const posted = await fetch(`${server.url}/v1/orders`, {
        method: 'POST',
        headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
        body: JSON.stringify(orderBody()),
      });
      expect(posted.status).toBe(202);
      const { id } = await posted.json();
      await waitForOrderStatus(server.app, shop.apiKey, id, 'dispatched');

      const response = await fetch(`${server.url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await response.text();

      expect(text).toMatch(/^# TYPE surgeline_http_requests_total counter$/m);
      expect(
        samples(text, 'surgeline_http_requests_total', { method: 'GET', route: '/healthz', status: '200' }),
      ).toHaveLength(1);
      expect(
        samples(text, 'surgeline_http_requests_total', {
          method: 'POST',
          route: '/v1/orders',
          status: '202',
        }),
      ).toHaveLength(1);
      // Routes are labelled by their pattern, not by the concrete path.
      expect(
        samples(text, 'surgeline_http_requests_total', { method: 'GET', route: '/v1/orders/:id' }).length +
          samples(text, 'surgeline_http_requests_total', { method: 'GET', route: '/v1/orders/{id}' }).length,
      ).toBeGreaterThan(0);
      expect(text).not.toContain(`route="/v1/orders/${id}"`);

      expect(text).toMatch(/^# TYPE surgeline_http_request_duration_seconds histogram$/m);
      expect(
        samples(text, 'surgeline_http_request_duration_seconds_count', { method: 'GET', route: '/healthz' }),
      ).toHaveLength(1);

      for (const queue of QUEUES) {
        expect(samples(text, 'surgeline_queue_jobs', { queue }).length).toBeGreaterThan(0);
      }
      for (const line of samples(text, 'surgeline_queue_jobs')) expect(line).toMatch(/state="[a-z_]+"/);

      expect(text).toMatch(/^# TYPE surgeline_job_duration_seconds histogram$/m);
      expect(samples(text, 'surgeline_job_duration_seconds_count', { queue: 'allocation' })).toHaveLength(1);
      expect(samples(text, 'surgeline_job_duration_seconds_count', { queue: 'dispatch' })).toHaveLength(1);

      const dispatched = samples(text, 'surgeline_orders_total', { status: 'dispatched' });
      expect(dispatched).toHaveLength(1);
      expect(Number(dispatched[0].split(' ').pop())).toBeGreaterThanOrEqual(1);
    });
  });

  describe('docs', () => {
    it('serves an OpenAPI 3 document with contract-style paths', async () => {
      const response = await fetch(`${server.url}/docs/json`);
      expect(response.status).toBe(200);
      const doc = await response.json();
      expect(String(doc.openapi)).toMatch(/^3\./);
      const paths = Object.keys(doc.paths);
      for (const path of [
        '/v1/orders',
        '/v1/orders/batch',
        '/v1/orders/{id}',
        '/v1/orders/{id}/cancel',
        '/v1/orders/{id}/feedback',
        '/v1/track/{token}',
        '/v1/carriers/{carrierId}/events',
        '/v1/admin/shops',
        '/v1/admin/carriers',
        '/v1/admin/carriers/{id}',
        '/v1/admin/warehouses',
        '/v1/admin/inventory',
        '/healthz',
        '/readyz',
      ]) {
        expect(`${path}: ${paths.includes(path)}`).toBe(`${path}: true`);
      }
      for (const path of paths) expect(path).not.toMatch(/\/:/);
    });

    it('serves Swagger UI at /docs', async () => {
      const response = await fetch(`${server.url}/docs`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect((await response.text()).toLowerCase()).toContain('swagger');
    });
  });

  describe('unknown routes and methods', () => {
    it('answers an unknown route with 404 problem+json', async () => {
      for (const path of ['/nope', '/v1/nothing-here', '/v2/orders']) {
        const body = expectProblem(await answerOf(await fetch(`${server.url}${path}`)), 404);
        expect(body).not.toHaveProperty('stack');
      }
    });

    it('answers a wrong method with 405 problem+json and an Allow header', async () => {
      const cases: { method: string; path: string; allowed: string[] }[] = [
        { method: 'DELETE', path: '/v1/orders', allowed: ['GET', 'POST'] },
        { method: 'PUT', path: '/healthz', allowed: ['GET'] },
        { method: 'PUT', path: '/v1/track/some-token', allowed: ['GET'] },
        { method: 'PATCH', path: '/v1/orders/00000000-0000-4000-8000-000000000000', allowed: ['GET'] },
        { method: 'GET', path: '/v1/carriers/some-carrier/events', allowed: ['POST'] },
        { method: 'DELETE', path: '/v1/admin/shops', allowed: ['POST'] },
      ];
      for (const { method, path, allowed } of cases) {
        const response = await fetch(`${server.url}${path}`, { method });
        expect(`${method} ${path} → ${response.status}`).toBe(`${method} ${path} → 405`);
        expectProblem(await answerOf(response), 405);
        const allow = (response.headers.get('allow') ?? '').split(',').map((m) => m.trim());
        for (const m of allowed) expect(allow).toContain(m);
        expect(allow).not.toContain(method);
      }
    });
  });

  describe('Bull Board', () => {
    it('needs the admin token', async () => {
      expectProblem(await answerOf(await fetch(`${server.url}/admin/queues`)), 401);
      expectProblem(await answerOf(await fetch(`${server.url}/admin/queues?token=wrong`)), 401);
      expectProblem(
        await answerOf(await fetch(`${server.url}/admin/queues`, { headers: shopHeaders(shop.apiKey) })),
        401,
      );
      expectProblem(await answerOf(await fetch(`${server.url}/admin/queues/api/queues`)), 401);
    });

    it('opens with the bearer token', async () => {
      const response = await fetch(`${server.url}/admin/queues`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    });

    it('opens with ?token= once, then with the cookie it sets', async () => {
      const first = await fetch(`${server.url}/admin/queues?token=${encodeURIComponent(ADMIN_TOKEN)}`);
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toMatch(/^text\/html/);
      const setCookie = first.headers.getSetCookie();
      expect(setCookie.length).toBeGreaterThan(0);
      const cookie = setCookie.map((c) => c.split(';')[0]).join('; ');

      const withCookie = await fetch(`${server.url}/admin/queues`, { headers: { cookie } });
      expect(withCookie.status).toBe(200);
      expect(withCookie.headers.get('content-type')).toMatch(/^text\/html/);
      const api = await fetch(`${server.url}/admin/queues/api/queues`, { headers: { cookie } });
      expect(api.status).toBe(200);
      // A made-up cookie is not the admin's.
      expectProblem(
        await answerOf(
          await fetch(`${server.url}/admin/queues`, {
            headers: { cookie: `${cookie.split('=')[0]}=forged` },
          }),
        ),
        401,
      );
    });

    it('lists the allocation and dispatch lanes and the notification channel queues through its API', async () => {
      const response = await fetch(`${server.url}/admin/queues/api/queues`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { queues: { name: string }[] };
      const names = body.queues.map((q) => q.name);
      // Allocation and dispatch are one lane per class, notification one queue per channel;
      // metrics still label them by stage.
      const boardQueues = [
        'allocation.essential',
        'allocation.express',
        'allocation.standard',
        'dispatch.essential',
        'dispatch.express',
        'dispatch.standard',
        'cancellation',
        'notification.sms',
        'notification.email',
        'notification.webhook',
      ];
      for (const queue of boardQueues) expect(names).toContain(queue);
    });
  });
});
