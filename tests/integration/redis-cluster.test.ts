/**
 * The engine on a real Redis Cluster (REDIS_CLUSTER_NODES): three masters started by this file,
 * the API and every worker in one process, QUEUE_PREFIX a hash tag. Orders go through intake
 * (the global ceiling), allocation, dispatch (a carrier answering 503 whose breaker opens, failover
 * to a rate-limited simulator), carrier events, notifications (SMS, email, shop webhooks), a
 * lockdown and a backorder; a shop goes over its rate limit; Bull Board reads the queues. Then
 * every key the engine touched (keyspace notifications, each node's own) and every key left (SCAN
 * on each master) must be in the prefix's one slot. REDIS_URL points nowhere: nothing may use it.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { and, eq, inArray } from 'drizzle-orm';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifications, orders } from '../../src/db/schema.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { createLogger } from '../../src/logger.js';
import { hashTag, keySlot } from '../../src/queues/connection.js';
import { registerScriptedCarrier, type ScriptedCarrier } from '../helpers/carriers.js';
import {
  admin,
  createShop,
  createWarehouse,
  newKey,
  orderBody,
  setStock,
  shopHeaders,
  startSimulatedCarrier,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { startReceiver } from '../helpers/receiver.js';
import { missingRedisTools, startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';

const PREFIX = `{surgeline-${randomBytes(4).toString('hex')}}`;
const SECRET = 'carrier-secret-123';
const REGION = 'shanghai-pudong';
const LOCKED = 'wuhan-hongshan';
const ORDERS = 8;
/** Nothing listens there: in cluster mode the engine must not connect to REDIS_URL. */
const NOWHERE = 'redis://127.0.0.1:1';
/** What a cross-slot mistake looks like in a log line. */
const CLUSTER_ERRORS =
  /CROSSSLOT|MOVED|ASK |TRYAGAIN|CLUSTERDOWN|hash to the same slot|not hash to|undeclared key/i;

type Timeline = { events: { status: string }[]; shipments: { carrierId: string; status: string }[] };

describe('the engine on a Redis Cluster', () => {
  const missing = missingRedisTools();
  let cluster: TestCluster;
  let db: TestDatabase;
  let server: TestServer;
  let down: ScriptedCarrier;
  let sim: CarrierSimulator;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  /** Keys each node reported touched (keyspace notifications), by node port. */
  const touched = new Map<number, Set<string>>();
  const watchers: Redis[] = [];
  const logLines: string[] = [];

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(`this test starts a Redis Cluster: install ${missing.join(', ')}`);
    cluster = await startRedisCluster(3, ['--notify-keyspace-events', 'KA']);
    for (const port of cluster.ports) {
      const seen = new Set<string>();
      touched.set(port, seen);
      const watcher = new Redis({ port, host: '127.0.0.1' });
      watcher.on('error', () => undefined);
      watcher.on('pmessage', (_pattern, channel: string) =>
        seen.add(channel.replace(/^__keyspace@0__:/, '')),
      );
      await watcher.psubscribe('__keyspace@0__:*');
      watchers.push(watcher);
    }

    db = await testDatabase();
    const log = createLogger(
      'warn',
      new Writable({
        write(chunk, _encoding, done) {
          logLines.push(String(chunk));
          done();
        },
      }),
    );
    server = await startTestServer(db.database, {
      env: {
        REDIS_CLUSTER_NODES: cluster.seeds,
        REDIS_URL: NOWHERE,
        QUEUE_PREFIX: PREFIX,
        // One 503 and the parcel moves on; two in a row open the breaker, which then stays open.
        DISPATCH_ATTEMPTS: '1',
        BREAKER_FAILURE_THRESHOLD: '2',
        BREAKER_COOL_DOWN_MS: '600000',
        // The global intake ceiling on (its sliding log is a key too), far above this test's rate.
        INTAKE_MAX_PER_SECOND: '1000',
        // Carrier workers learn of new carriers only from the announcement on the cluster's pub/sub.
        CARRIER_REFRESH_MS: '600000',
        // The default grace: the harness's 1 s has the reconciler re-drive dispatches whose booking
        // call is in flight, which can race the booking (a DELETE at the carrier that is booking
        // it; not a cluster matter, see the branch's notes). Its passes and lock still run.
        RECONCILE_GRACE_MS: '10000',
      },
      overrides: { log },
    });
    receiver = await startReceiver();
  }, 90_000);

  afterAll(async () => {
    await sim?.close();
    await down?.close();
    await receiver?.close();
    await server?.close();
    await db?.drop();
    for (const watcher of watchers) watcher.disconnect();
    await cluster?.stop();
  });

  /** Summed over the masters: PUBSUB NUMSUB answers for the node asked only. */
  const subscribers = async (channel: string) => {
    const counts = await Promise.all(
      cluster.nodes.map(async (n) => Number(((await n.pubsub('NUMSUB', channel)) as [string, number])[1])),
    );
    return counts.reduce((a, b) => a + b, 0);
  };

  const post = (apiKey: string, body: Record<string, unknown>) =>
    fetch(`${server.url}/v1/orders`, {
      method: 'POST',
      headers: { ...shopHeaders(apiKey, newKey()), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  const statuses = async (ids: string[]) =>
    new Map(
      (
        await server.ctx.db
          .select({ id: orders.id, status: orders.status })
          .from(orders)
          .where(inArray(orders.id, ids))
      ).map((r) => [r.id, r.status]),
    );

  const waitForAll = async (ids: string[], status: string, timeoutMs = 45_000) => {
    try {
      await waitFor(
        async () => {
          const now = await statuses(ids);
          return ids.every((id) => now.get(id) === status);
        },
        `${ids.length} orders ${status}`,
        timeoutMs,
      );
    } catch (error) {
      const now = await statuses(ids);
      throw new Error(
        `${(error as Error).message}: ${[...now].map(([id, s]) => `${id.slice(0, 8)} ${s}`).join(', ')}\n` +
          `engine warnings:\n${logLines.slice(-20).join('')}`,
      );
    }
  };

  const timeline = async (apiKey: string, id: string): Promise<Timeline> => {
    const response = await fetch(`${server.url}/v1/orders/${id}`, { headers: shopHeaders(apiKey) });
    expect(response.status).toBe(200);
    return (await response.json()) as Timeline;
  };

  it('is up on the cluster: /readyz answers 200, REDIS_URL unused', async () => {
    expect(server.ctx.queues.backend.redis).toBeInstanceOf(Cluster);
    // Ready once the cluster's slots are known (503 until then, as while Redis is away).
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, '/readyz 200', 15_000);
  });

  it('takes orders through allocation, dispatch (breaker and failover), carrier events, notifications, a lockdown and a backorder', async () => {
    // The carrier workers' subscription is up before a carrier is announced.
    await waitFor(
      async () => (await subscribers(`${PREFIX}:carriers-changed`)) >= 1,
      'the carriers subscription',
    );

    const shop = await createShop(server.app, { rateLimitPerMinute: 1_000_000, webhookUrl: receiver.url });
    await createWarehouse(server.app, 'wh-cluster', REGION);
    await setStock(server.app, 'wh-cluster', 'MASK-N95', 1_000);
    // GLOVE-L is only inbound: its order waits for the restock (backordered).
    const restock = await server.app.inject({
      method: 'POST',
      url: '/v1/admin/inventory/restocks',
      headers: admin,
      payload: {
        warehouseId: 'wh-cluster',
        sku: 'GLOVE-L',
        quantity: 10,
        eta: new Date(Date.now() + 86_400_000).toISOString(),
      },
    });
    expect(restock.statusCode, restock.body).toBe(201);
    const lock = await server.app.inject({
      method: 'PUT',
      url: `/v1/admin/regions/${LOCKED}/lockdown`,
      headers: admin,
      payload: { reason: 'Epidemic control' },
    });
    expect(lock.statusCode, lock.body).toBe(200);

    down = await registerScriptedCarrier(
      server.app,
      { id: 'cl-down', script: (c) => (c.method === 'POST' ? { status: 503 } : undefined) },
      { regions: ['*'], rank: 1 },
    );
    sim = await startSimulatedCarrier(
      server.app,
      {
        carrierId: 'cl-sim',
        webhookSecret: SECRET,
        apiKey: 'cl-sim-key',
        eventsBaseUrl: server.url,
        progress: { inTransitAfterMs: 200, deliveredAfterMs: 400 },
      },
      { regions: ['*'], rank: 2, rateLimitPerSecond: 50 },
    );

    const classes = ['essential', 'express', 'standard'];
    const placed = await Promise.all(
      Array.from({ length: ORDERS }, async (_, i) => {
        const response = await post(shop.apiKey, orderBody({ priority: classes[i % 3] }));
        expect(response.status, await response.clone().text()).toBe(202);
        return ((await response.json()) as { id: string }).id;
      }),
    );
    const heldResponse = await post(
      shop.apiKey,
      orderBody({
        priority: 'express',
        shippingAddress: {
          region: LOCKED,
          line1: '1 Jiefang Road',
          city: 'Wuhan',
          postalCode: '430000',
          country: 'CN',
        },
      }),
    );
    expect(heldResponse.status).toBe(202);
    const held = ((await heldResponse.json()) as { id: string }).id;
    const backResponse = await post(shop.apiKey, orderBody({ items: [{ sku: 'GLOVE-L', quantity: 1 }] }));
    expect(backResponse.status).toBe(202);
    const back = ((await backResponse.json()) as { id: string }).id;

    await waitForAll([held], 'on_hold');
    await waitForAll([back], 'backordered');
    await waitForAll(placed, 'delivered');

    // cl-down answered 503 until its breaker opened (two in a row), then was skipped.
    const carriers = await server.app.inject({ url: '/v1/admin/carriers?limit=100', headers: admin });
    const breakerOf = (id: string) =>
      carriers.json().items.find((c: { id: string }) => c.id === id)?.breaker as { state: string };
    expect(breakerOf('cl-down').state).toBe('open');
    expect(breakerOf('cl-sim').state).toBe('closed');
    expect(down.posts().length).toBeGreaterThanOrEqual(2);
    const callsAtDown = down.posts().length;

    // The region lifted and the restock received: both resume, through the workers' passes.
    const lift = await server.app.inject({
      method: 'DELETE',
      url: `/v1/admin/regions/${LOCKED}/lockdown`,
      headers: admin,
    });
    expect(lift.statusCode, lift.body).toBe(204);
    const received = await server.app.inject({
      method: 'POST',
      url: `/v1/admin/inventory/restocks/${restock.json().id}/receive`,
      headers: admin,
    });
    expect(received.statusCode, received.body).toBe(200);
    await waitForAll([held, back], 'delivered');
    // Its breaker open, cl-down was not called for these two.
    expect(down.posts().length).toBe(callsAtDown);

    const all = [...placed, held, back];
    for (const id of all) {
      const order = await timeline(shop.apiKey, id);
      const steps = order.events.map((e) => e.status);
      expect(steps[0]).toBe('received');
      expect(steps.slice(-4)).toEqual(['allocated', 'dispatched', 'in_transit', 'delivered']);
      if (id === held) expect(steps).toContain('on_hold');
      if (id === back) expect(steps).toContain('backordered');
      expect(order.shipments).toEqual([
        expect.objectContaining({ carrierId: 'cl-sim', status: 'delivered' }),
      ]);
    }

    // Every channel told every order it was delivered: SMS and email (recorded), the shop's webhook.
    await waitFor(async () => {
      const sent = await server.ctx.db
        .select({ orderId: notifications.orderId, channel: notifications.channel })
        .from(notifications)
        .where(
          and(
            inArray(notifications.orderId, all),
            eq(notifications.status, 'delivered'),
            eq(notifications.state, 'sent'),
          ),
        );
      return all.every((id) =>
        ['sms', 'email', 'webhook'].every((ch) => sent.some((s) => s.orderId === id && s.channel === ch)),
      );
    }, 'delivered told on sms, email and webhook for every order');
    expect(
      new Set(receiver.received.filter((r) => r.json.status === 'delivered').map((r) => r.json.orderId)),
    ).toEqual(new Set(all));
  }, 120_000);

  it("answers 429 with Retry-After and RateLimit-* over a shop's limit (its log in the cluster)", async () => {
    const shop = await createShop(server.app, { rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) {
      const ok = await fetch(`${server.url}/v1/orders`, { headers: shopHeaders(shop.apiKey) });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('ratelimit-remaining')).toBe(String(2 - i));
    }
    const refused = await fetch(`${server.url}/v1/orders`, { headers: shopHeaders(shop.apiKey) });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-limit')).toBe('3');
    expect((await refused.json()).code).toBe('rate_limited');
  });

  it('Bull Board reads the queues from the cluster', async () => {
    const response = await fetch(`${server.url}/admin/queues/api/queues`, { headers: admin });
    expect(response.status).toBe(200);
    const names = ((await response.json()).queues as { name: string }[]).map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['allocation.essential', 'dispatch.standard']));
  });

  it('put every key it touched, and every key left, in the one slot of the prefix hash tag', async () => {
    const expected = keySlot(PREFIX);
    expect(hashTag(PREFIX)).toBe(PREFIX.slice(1, -1));
    // Our CRC16 agrees with the cluster's.
    expect(Number(await cluster.nodes[0].cluster('KEYSLOT', PREFIX))).toBe(expected);

    const left = new Map<number, string[]>();
    for (const [i, node] of cluster.nodes.entries()) {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      left.set(cluster.ports[i], keys);
    }
    const slotOf = async (key: string) => Number(await cluster.nodes[0].cluster('KEYSLOT', key));
    const allLeft = [...left.values()].flat();
    const allTouched = [...new Set([...touched.values()].flatMap((s) => [...s]))];
    const offSlot = [];
    for (const key of new Set([...allLeft, ...allTouched])) {
      const slot = await slotOf(key);
      if (slot !== expected) offSlot.push(`${key} (slot ${slot})`);
    }
    expect(offSlot, `keys outside slot ${expected} of ${PREFIX}`).toEqual([]);
    // On one node only, and all of them under the prefix (the cluster is this file's alone).
    expect([...left.values()].filter((keys) => keys.length > 0)).toHaveLength(1);
    expect([...touched.values()].filter((keys) => keys.size > 0)).toHaveLength(1);
    expect(allTouched.filter((k) => !k.startsWith(`${PREFIX}:`))).toEqual([]);

    // The families of keys this run must have written, so the check above covered them.
    const families = [
      ':ratelimit:intake', // the global intake ceiling
      ':ratelimit:', // shops' sliding logs (@fastify/rate-limit's store)
      ':breaker:cl-down',
      ':carrier-rate:cl-sim', // the carrier's sliding log
      ':fair', // shops' turns in a lane
      ':reconciler:lock',
      ':lockdowns:',
      ':backorders:',
      ':allocation.', // BullMQ, laned stages
      ':dispatch.cl-sim.', // BullMQ, a carrier's booking lanes
      ':notification.', // BullMQ, channel queues
    ];
    const missingFamilies = families.filter((f) => !allTouched.some((k) => k.includes(f)));
    expect(missingFamilies, `touched: ${allTouched.slice(0, 60).join(' ')}`).toEqual([]);

    expect(logLines.filter((l) => CLUSTER_ERRORS.test(l))).toEqual([]);
  });
});
