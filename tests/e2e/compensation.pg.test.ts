/**
 * A cancelled or failed order never leaves a parcel booked at any carrier (contract: Carriers,
 * Allocation, cancel) — also when the worker making the booking call is SIGKILLed, when the
 * booking lands after the cancel committed, when a carrier that timed out books late, and when the
 * carrier refuses the DELETE for a while.
 *
 * The API runs in this process; workers run as separate OS processes (src/main.ts worker) against
 * the same PostgreSQL database and Redis prefix. Each case has its own region, carrier(s) and SKU,
 * so the cases after the first run side by side on one worker. Carriers are the real simulator
 * (src/demo/carrier-simulator.ts) or, where it has no switch for the behaviour, a small node:http
 * carrier below that speaks the same protocol.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shipments } from '../../src/db/schema.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  createCarrier,
  createShop,
  createWarehouse,
  orderBody,
  placeOrder,
  setStock,
  shopHeaders,
  startSimulatedCarrier,
  storedStatus,
} from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  REDIS_URL,
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { exitWithin, killAll, spawnSurgeline, type SurgelineProcess } from '../helpers/worker-process.js';

const SECRET = 'carrier-secret-123';
/** The workers' carrier timeout: a booking call with no answer by then is a timeout. */
const CARRIER_TIMEOUT_MS = 1500;

interface LocalBooking {
  trackingNumber: string;
  cancelled: boolean;
}

interface CarrierCall {
  method: 'POST' | 'DELETE';
  reference: string;
  /** The n-th call of this method for this reference, from 1. */
  n: number;
  at: number;
  /** What was answered (undefined while the answer is pending). */
  status?: number;
}

/** What a local carrier does with its n-th POST for a reference. */
interface PostPlan {
  /** Before the request is acted on (a carrier slow to process: it books only then). */
  processAfterMs?: number;
  /** 201 books (or re-activates a cancelled booking, as the simulator does); anything else books nothing. */
  status: number;
  /** After acting on it, before answering. */
  answerAfterMs?: number;
}

/**
 * A carrier speaking the contract's protocol whose answers a test scripts: `post` plans each
 * booking call, `del` may override a DELETE's answer (else 204 for a live booking, 404 otherwise).
 * Every call is logged in `calls`, every booking kept in `bookings`.
 */
async function startLocalCarrier(script: {
  post: (reference: string, n: number) => PostPlan;
  del?: (reference: string, n: number) => number | undefined;
}) {
  const bookings = new Map<string, LocalBooking>();
  const calls: CarrierCall[] = [];
  const counts = new Map<string, number>();
  const sleep = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', async () => {
      const url = new URL(request.url ?? '/', 'http://carrier.invalid');
      const answer = (call: CarrierCall | undefined, status: number, body?: unknown) => {
        if (call) call.status = status;
        if (response.destroyed) return; // the caller gave up (timeout): it never sees this
        response.writeHead(status, body ? { 'content-type': 'application/json' } : {});
        response.end(body ? JSON.stringify(body) : undefined);
      };
      const record = (method: 'POST' | 'DELETE', reference: string) => {
        const key = `${method} ${reference}`;
        const n = (counts.get(key) ?? 0) + 1;
        counts.set(key, n);
        const call: CarrierCall = { method, reference, n, at: Date.now() };
        calls.push(call);
        return call;
      };
      if (request.method === 'POST' && url.pathname === '/shipments') {
        const reference = String(request.headers['idempotency-key'] ?? '');
        const call = record('POST', reference);
        const plan = script.post(reference, call.n);
        await sleep(plan.processAfterMs);
        if (plan.status !== 201) return answer(call, plan.status, { error: 'scripted' });
        const booking = bookings.get(reference) ?? {
          trackingNumber: `LOCAL-${reference.slice(0, 8)}-${bookings.size + 1}`,
          cancelled: false,
        };
        booking.cancelled = false;
        bookings.set(reference, booking);
        await sleep(plan.answerAfterMs);
        return answer(call, 201, {
          trackingNumber: booking.trackingNumber,
          estimatedDeliveryAt: new Date(Date.now() + 86_400_000).toISOString(),
        });
      }
      const cancel = /^\/shipments\/([^/]+)$/.exec(url.pathname);
      if (request.method === 'DELETE' && cancel) {
        const reference = decodeURIComponent(cancel[1]);
        const call = record('DELETE', reference);
        const scripted = script.del?.(reference, call.n);
        if (scripted !== undefined) return answer(call, scripted, { error: 'scripted' });
        const booking = bookings.get(reference);
        if (!booking || booking.cancelled) return answer(call, 404, { error: 'not_found' });
        booking.cancelled = true;
        return answer(call, 204);
      }
      answer(undefined, 404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bookings,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type LocalCarrier = Awaited<ReturnType<typeof startLocalCarrier>>;

describe('compensation: no parcel of a cancelled or failed order stays booked', () => {
  let db: TestDatabase;
  let api: TestServer;
  let shop: { apiKey: string };
  let workerEnv: Record<string, string>;
  let worker: SurgelineProcess | undefined;
  const simulators: CarrierSimulator[] = [];
  const locals: LocalCarrier[] = [];

  beforeAll(async () => {
    db = await testDatabase();
    api = await startTestServer(db.database, { role: 'api', env: { DATABASE_URL: db.url! } });
    shop = await createShop(api.app, { rateLimitPerMinute: 100_000 });
    workerEnv = {
      DATABASE_URL: db.url!,
      REDIS_URL,
      QUEUE_PREFIX: api.config.queuePrefix,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      MIGRATE_ON_START: '0',
      ADMIN_TOKEN,
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      // The cancellation trusts a 404 for a possibly in-flight call only CARRIER_TIMEOUT_MS + 5 s
      // after it started; a low timeout keeps that wait short.
      CARRIER_TIMEOUT_MS: String(CARRIER_TIMEOUT_MS),
      DISPATCH_ATTEMPTS: '2',
    };
  });

  afterAll(async () => {
    await killAll();
    await Promise.all([...simulators, ...locals].map((c) => c.close()));
    await api?.close();
    await db?.drop();
  });

  const output = () => worker?.output() ?? '(no worker)';

  /** A warehouse holding `quantity` of a SKU of the case's own. */
  async function stockOf(warehouseId: string, sku: string, quantity = 10) {
    await createWarehouse(api.app, warehouseId);
    await setStock(api.app, warehouseId, sku, quantity);
  }

  async function inventory(sku: string) {
    const response = await api.app.inject({ url: `/v1/admin/inventory?sku=${sku}`, headers: api.admin });
    return response.json().items[0] as { onHand: number; reserved: number; available: number };
  }

  async function place(region: string, sku: string): Promise<string> {
    const body = orderBody({
      shippingAddress: {
        region,
        line1: '1 Century Avenue',
        city: 'Shanghai',
        postalCode: '200120',
        country: 'CN',
      },
      items: [{ sku, quantity: 1 }],
    });
    return (await placeOrder(api.app, shop.apiKey, body)).id;
  }

  async function cancel(orderId: string) {
    const response = await api.app.inject({
      method: 'POST',
      url: `/v1/orders/${orderId}/cancel`,
      headers: shopHeaders(shop.apiKey),
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  }

  async function parcelOf(orderId: string) {
    const rows = await db.database.db.select().from(shipments).where(eq(shipments.orderId, orderId));
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  async function local(carrier: Record<string, unknown>, script: Parameters<typeof startLocalCarrier>[0]) {
    const started = await startLocalCarrier(script);
    locals.push(started);
    await createCarrier(api.app, { baseUrl: started.url, ...carrier });
    return started;
  }

  async function simulator(id: string, regions: string[], latencyMs: number, rank = 1) {
    const started = await startSimulatedCarrier(
      api.app,
      {
        carrierId: id,
        webhookSecret: SECRET,
        apiKey: `${id}-key`,
        eventsBaseUrl: api.url,
        latencyMs,
        progress: false,
      },
      { regions, rank },
    );
    simulators.push(started);
    return started;
  }

  const notLive = (booking: { cancelled: boolean } | undefined) => booking === undefined || booking.cancelled;

  describe('across a SIGKILL', () => {
    it('(a) a worker killed mid-booking, the order cancelled while no worker runs: the next worker cancels the booking', async () => {
      const sim = await simulator('sim-kill', ['region-kill'], 3000);
      await stockOf('wh-kill', 'SKU-KILL');
      const first = spawnSurgeline('worker', workerEnv);
      const orderId = await place('region-kill', 'SKU-KILL');

      // The simulator took the booking (it books on receipt and answers 3 s later).
      await waitFor(
        async () => sim.bookings.size === 1,
        `the booking call (output: ${first.output()})`,
        30_000,
      );
      const [reference] = sim.bookings.keys();
      expect((await parcelOf(orderId)).status).toBe('booking');
      first.kill('SIGKILL');
      expect(await exitWithin(first, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
      sim.set({ latencyMs: 0 }); // the simulator delays every answer, DELETEs too

      // The shop cancels; no worker runs.
      const cancelled = await cancel(orderId);
      expect(cancelled.status).toBe('cancelled');
      expect((await parcelOf(orderId)).status).toBe('cancel_pending');
      expect(await inventory('SKU-KILL')).toMatchObject({ onHand: 10, reserved: 0 });
      expect(sim.bookings.get(reference)?.cancelled).toBe(false); // still live at the carrier

      worker = spawnSurgeline('worker', workerEnv);
      await waitFor(
        async () => (await parcelOf(orderId)).status === 'cancelled',
        `the new worker to cancel the parcel (output: ${output()})`,
        30_000,
      );
      expect(notLive(sim.bookings.get(reference))).toBe(true);
      expect(sim.stats.cancelled).toBe(1);
      expect(await storedStatus(db.database.db, orderId)).toBe('cancelled');
      expect(await inventory('SKU-KILL')).toMatchObject({ onHand: 10, reserved: 0 });
      // The dead worker's dispatch job, picked up again, did not book it anew.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(notLive(sim.bookings.get(reference))).toBe(true);
      expect(sim.bookings.get(reference)?.bookCalls).toBe(1);
    });
  });

  describe.concurrent('with a worker running', () => {
    it('(b) a cancel during the booking call: the booking that lands after it is cancelled at the carrier', async ({
      expect,
    }) => {
      const sim = await simulator('sim-inflight', ['region-inflight'], 800);
      await stockOf('wh-inflight', 'SKU-INFLIGHT');
      const orderId = await place('region-inflight', 'SKU-INFLIGHT');
      await waitFor(async () => sim.bookings.size === 1, `the booking call (output: ${output()})`, 30_000);
      const [reference] = sim.bookings.keys();

      await cancel(orderId); // the 201 is still on its way back
      await waitFor(
        async () => (await parcelOf(orderId)).status === 'cancelled',
        `the parcel to be cancelled (output: ${output()})`,
        30_000,
      );
      expect(sim.bookings.get(reference)?.cancelled).toBe(true);
      expect(sim.stats.cancelled).toBe(1);
      expect(await inventory('SKU-INFLIGHT')).toMatchObject({ onHand: 10, reserved: 0 });
    });

    it('(b) a carrier that books only after the cancel committed (its first DELETEs find nothing): the late booking is cancelled', async ({
      expect,
    }) => {
      const carrier = await local(
        { id: 'late-book', regions: ['region-late'] },
        { post: () => ({ processAfterMs: 1000, status: 201 }) },
      );
      await stockOf('wh-late', 'SKU-LATE');
      const orderId = await place('region-late', 'SKU-LATE');
      await waitFor(async () => carrier.calls.length === 1, `the booking call (output: ${output()})`, 30_000);
      const reference = carrier.calls[0].reference;

      await cancel(orderId);
      // The cancel reaches the carrier before it has booked: 404, which proves nothing yet.
      await waitFor(
        async () => carrier.calls.some((c) => c.method === 'DELETE' && c.status === 404),
        'a DELETE answered 404 while the booking is in flight',
        10_000,
      );
      expect(carrier.bookings.has(reference)).toBe(false);
      expect((await parcelOf(orderId)).status).toBe('cancel_pending');

      await waitFor(
        async () => (await parcelOf(orderId)).status === 'cancelled',
        `the parcel to be cancelled (output: ${output()})`,
        30_000,
      );
      expect(carrier.bookings.get(reference)).toMatchObject({ cancelled: true });
      const booked = carrier.calls.find((c) => c.method === 'POST' && c.status === 201)!;
      expect(carrier.calls.some((c) => c.method === 'DELETE' && c.status === 204 && c.at >= booked.at)).toBe(
        true,
      );
    });

    it('(b) a cancel that a 2xx confirms while a retried booking call is still in flight: the booking that call re-makes is cancelled too', async ({
      expect,
    }) => {
      // POST 1 books at once but answers after the timeout; POST 2 (the retry, same key) is acted
      // on only after 1 s: it re-activates the booking the cancel's first DELETE removed.
      const carrier = await local(
        { id: 'replay-late', regions: ['region-replay'] },
        {
          post: (_reference, n) =>
            n === 1
              ? { status: 201, answerAfterMs: CARRIER_TIMEOUT_MS + 1000 }
              : { processAfterMs: 1000, status: 201 },
        },
      );
      await stockOf('wh-replay', 'SKU-REPLAY');
      const orderId = await place('region-replay', 'SKU-REPLAY');
      await waitFor(
        async () => carrier.calls.filter((c) => c.method === 'POST').length === 2,
        `the retried booking call (output: ${output()})`,
        30_000,
      );
      const reference = carrier.calls[0].reference;

      await cancel(orderId);
      await waitFor(
        async () => carrier.calls.some((c) => c.method === 'DELETE' && c.status === 204),
        'the first DELETE to be answered 204',
        10_000,
      );
      await waitFor(
        async () => carrier.calls.some((c) => c.method === 'POST' && c.n === 2 && c.status === 201),
        'the retried call to book',
        10_000,
      );
      await waitFor(
        async () => (await parcelOf(orderId)).status === 'cancelled',
        `the parcel to be cancelled (output: ${output()})`,
        30_000,
      );
      expect(carrier.bookings.get(reference)).toMatchObject({ cancelled: true });
      const rebooked = carrier.calls.find((c) => c.method === 'POST' && c.n === 2)!;
      expect(carrier.calls.some((c) => c.method === 'DELETE' && c.status === 204 && c.at > rebooked.at)).toBe(
        true,
      );
    });

    it('(c) a timeout at A, transient errors at B: A is cancelled before B is tried, and nothing is live when the order fails', async ({
      expect,
    }) => {
      // A books on receipt and answers after the workers' timeout; B always answers 503.
      const a = await simulator('sim-slow-a', ['region-failover'], CARRIER_TIMEOUT_MS + 1500, 1);
      const aLiveWhenBCalled: boolean[] = [];
      const b = await local(
        { id: 'flaky-b', regions: ['region-failover'], rank: 2 },
        {
          post: (reference) => {
            aLiveWhenBCalled.push(!notLive(a.bookings.get(reference)));
            return { status: 503 };
          },
        },
      );
      await stockOf('wh-failover', 'SKU-FAILOVER');
      const orderId = await place('region-failover', 'SKU-FAILOVER');
      // Both calls (DISPATCH_ATTEMPTS=2) booked at A and wait for their late answer; the
      // simulator delays every answer, so from now on it answers at once (the DELETE).
      await waitFor(
        async () => a.stats.calls === 2,
        `the two booking calls at A (output: ${output()})`,
        30_000,
      );
      a.set({ latencyMs: 0 });

      await waitFor(
        async () => (await storedStatus(db.database.db, orderId)) === 'failed',
        `the order to fail (output: ${output()})`,
        40_000,
      );
      const order = (
        await api.app.inject({ url: `/v1/orders/${orderId}`, headers: shopHeaders(shop.apiKey) })
      ).json();
      expect(order.failureReason).toBe('carrier_failed');
      const [reference] = a.bookings.keys();
      expect(a.bookings.get(reference)?.cancelled).toBe(true);
      expect(b.bookings.size).toBe(0);
      expect(aLiveWhenBCalled.length).toBeGreaterThanOrEqual(1);
      expect(aLiveWhenBCalled.every((live) => !live)).toBe(true); // DELETE at A came first
      await waitFor(
        async () => (await parcelOf(orderId)).status === 'cancelled',
        'the parcel to be cancelled',
      );
      expect(await inventory('SKU-FAILOVER')).toMatchObject({ onHand: 10, reserved: 0 });
    });

    it('(c) a carrier that books only after the call timed out: its booking is cancelled before the next carrier is tried', async ({
      expect,
    }) => {
      // A acts on each call 1 s after the caller's timeout (so its first DELETE finds nothing); B 503.
      const a = await local(
        { id: 'late-a', regions: ['region-late-failover'], rank: 1 },
        { post: () => ({ processAfterMs: CARRIER_TIMEOUT_MS + 1000, status: 201 }) },
      );
      const aLiveWhenBCalled: boolean[] = [];
      const b = await local(
        { id: 'late-b', regions: ['region-late-failover'], rank: 2 },
        {
          post: (reference) => {
            aLiveWhenBCalled.push(!notLive(a.bookings.get(reference)));
            return { status: 503 };
          },
        },
      );
      await stockOf('wh-late-failover', 'SKU-LATE-FAILOVER');
      const orderId = await place('region-late-failover', 'SKU-LATE-FAILOVER');

      await waitFor(
        async () => (await storedStatus(db.database.db, orderId)) === 'failed',
        `the order to fail (output: ${output()})`,
        40_000,
      );
      await waitFor(
        async () => (await parcelOf(orderId)).status === 'cancelled',
        'the parcel to be cancelled',
      );
      const reference = a.calls[0].reference;
      // Give any call still being acted on at A the time to land, then look.
      await new Promise((resolve) => setTimeout(resolve, CARRIER_TIMEOUT_MS + 1000));
      expect(a.bookings.has(reference)).toBe(true); // A did book, after our timeout
      expect(notLive(a.bookings.get(reference))).toBe(true);
      expect(b.bookings.size).toBe(0);
      expect(aLiveWhenBCalled.length).toBeGreaterThanOrEqual(1);
      expect(aLiveWhenBCalled.every((live) => !live)).toBe(true);
    });

    it('(d) a DELETE the carrier refuses (500) is retried until it answers 2xx; the parcel stays cancel_pending meanwhile', async ({
      expect,
    }) => {
      const FAILING = 3;
      const carrier = await local(
        { id: 'no-delete', regions: ['region-nodelete'] },
        {
          post: () => ({ status: 201, answerAfterMs: 700 }),
          del: (_reference, n) => (n <= FAILING ? 500 : undefined),
        },
      );
      await stockOf('wh-nodelete', 'SKU-NODELETE');
      const orderId = await place('region-nodelete', 'SKU-NODELETE');
      await waitFor(
        async () => carrier.bookings.size === 1,
        `the booking call (output: ${output()})`,
        30_000,
      );
      const reference = carrier.calls[0].reference;

      await cancel(orderId);
      for (let failed = 1; failed <= FAILING; failed++) {
        await waitFor(
          async () => carrier.calls.filter((c) => c.method === 'DELETE' && c.status === 500).length >= failed,
          `DELETE #${failed} to be refused`,
          20_000,
        );
        expect((await parcelOf(orderId)).status).toBe('cancel_pending');
        expect(carrier.bookings.get(reference)?.cancelled).toBe(false);
      }
      await waitFor(
        async () => (await parcelOf(orderId)).status === 'cancelled',
        `the parcel to be cancelled (output: ${output()})`,
        30_000,
      );
      expect(carrier.bookings.get(reference)).toMatchObject({ cancelled: true });
      const deletes = carrier.calls.filter((c) => c.method === 'DELETE');
      expect(deletes.slice(0, FAILING).map((c) => c.status)).toEqual([500, 500, 500]);
      expect(deletes.some((c) => c.status === 204)).toBe(true);
      expect(await inventory('SKU-NODELETE')).toMatchObject({ onHand: 10, reserved: 0 });
    });
  });
});
