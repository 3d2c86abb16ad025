import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startCarrierSimulator } from '../../src/demo/carrier-simulator.js';
import type { CarrierSimulator, CarrierSimulatorOptions } from '../../src/demo/carrier-simulator.js';

const SECRET = 'whsec-test';
const API_KEY = 'key-test';

interface ReceivedEvent {
  path: string;
  raw: string;
  signature: string | undefined;
  contentType: string | undefined;
  body: { trackingNumber: string; status: string; at: string };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

async function startSim(opts: Partial<CarrierSimulatorOptions> = {}): Promise<CarrierSimulator> {
  const sim = await startCarrierSimulator({
    carrierId: 'acme',
    webhookSecret: SECRET,
    apiKey: API_KEY,
    progress: false,
    ...opts,
  });
  cleanups.push(() => sim.close());
  return sim;
}

/** Minimal Surgeline stand-in that records every event POSTed to it. */
async function startReceiver(): Promise<{ url: string; events: ReceivedEvent[] }> {
  const events: ReceivedEvent[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      events.push({
        path: req.url ?? '',
        raw,
        signature: req.headers['x-signature'] as string | undefined,
        contentType: req.headers['content-type'],
        body: JSON.parse(raw) as ReceivedEvent['body'],
      });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, events };
}

function book(
  sim: CarrierSimulator,
  key: string,
  opts: { region?: string; auth?: string | null; signal?: AbortSignal } = {},
): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Idempotency-Key': key };
  if (opts.auth !== null) headers.Authorization = opts.auth ?? `Bearer ${API_KEY}`;
  return fetch(`${sim.url}/shipments`, {
    method: 'POST',
    headers,
    signal: opts.signal,
    body: JSON.stringify({
      reference: key,
      orderId: `order-${key}`,
      region: opts.region ?? 'eu-west',
      address: { line1: '1 Main St', city: 'Dublin', country: 'IE' },
      items: [{ sku: 'SKU-1', quantity: 2 }],
      contactless: true,
      priority: 'standard',
    }),
  });
}

function cancel(sim: CarrierSimulator, key: string): Promise<Response> {
  return fetch(`${sim.url}/shipments/${encodeURIComponent(key)}`, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${API_KEY}` },
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sign = (raw: string) => 'sha256=' + createHmac('sha256', SECRET).update(raw).digest('hex');

describe('carrier simulator', () => {
  it('books a shipment: 201 with trackingNumber and estimatedDeliveryAt = now + transitHours', async () => {
    const sim = await startSim({ transitHours: 48 });
    const before = Date.now();
    const res = await book(sim, 'shp-1');
    expect(res.status).toBe(201);
    const body = (await res.json()) as { trackingNumber: string; estimatedDeliveryAt: string };
    expect(body.trackingNumber).toMatch(/^ACME-[0-9A-F]+$/);
    // RFC 3339 UTC, as produced by toISOString().
    expect(new Date(body.estimatedDeliveryAt).toISOString()).toBe(body.estimatedDeliveryAt);
    const eta = Date.parse(body.estimatedDeliveryAt) - before;
    expect(eta).toBeGreaterThanOrEqual(48 * 3_600_000);
    expect(eta).toBeLessThan(48 * 3_600_000 + 5_000);

    const booking = sim.bookings.get('shp-1');
    expect(booking).toMatchObject({
      trackingNumber: body.trackingNumber,
      orderId: 'order-shp-1',
      region: 'eu-west',
      cancelled: false,
      bookCalls: 1,
    });
    expect(sim.stats.booked).toBe(1);
  });

  it('a retry with the same Idempotency-Key returns the same booking and books nothing new', async () => {
    const sim = await startSim();
    const first = (await (await book(sim, 'shp-2')).json()) as Record<string, string>;
    const res = await book(sim, 'shp-2');
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual(first);
    expect(sim.bookings.size).toBe(1);
    expect(sim.bookings.get('shp-2')?.bookCalls).toBe(2);
    expect(sim.stats.booked).toBe(1);
  });

  it('rejects a missing or wrong bearer with 401', async () => {
    const sim = await startSim();
    for (const auth of ['Bearer wrong', null]) {
      const res = await book(sim, 'shp-3', { auth });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'unauthorized' });
    }
    expect(sim.bookings.size).toBe(0);
  });

  it('rejects a missing Idempotency-Key with 400', async () => {
    const sim = await startSim();
    const res = await fetch(`${sim.url}/shipments`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ region: 'eu-west' }),
    });
    expect(res.status).toBe(400);
    expect(sim.bookings.size).toBe(0);
  });

  it('answers 422 region_unserviceable for a refused region', async () => {
    const sim = await startSim({ refuseRegions: ['antarctica'] });
    const res = await book(sim, 'shp-4', { region: 'antarctica' });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ error: 'region_unserviceable' });
    expect(sim.bookings.size).toBe(0);
    expect(sim.stats.refused).toBe(1);
  });

  it('with failureRate 1 answers 503 without booking, and books once failures stop', async () => {
    const sim = await startSim({ failureRate: 1 });
    const res = await book(sim, 'shp-5');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: 'unavailable' });
    expect(sim.bookings.size).toBe(0);
    expect(sim.stats.transient).toBe(1);

    sim.set({ failureRate: 0 });
    expect((await book(sim, 'shp-5')).status).toBe(201);
    expect(sim.bookings.get('shp-5')?.bookCalls).toBe(1);
  });

  it('with rateLimitedRate 1 answers 429 with Retry-After without booking', async () => {
    const sim = await startSim({ rateLimitedRate: 1 });
    const res = await book(sim, 'shp-6');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(sim.bookings.size).toBe(0);
  });

  it('DELETE cancels an active booking, then answers 404', async () => {
    const sim = await startSim();
    await book(sim, 'shp-7');
    const first = await cancel(sim, 'shp-7');
    expect(first.status).toBe(204);
    expect(sim.bookings.get('shp-7')?.cancelled).toBe(true);
    expect((await cancel(sim, 'shp-7')).status).toBe(404);
    expect((await cancel(sim, 'never-booked')).status).toBe(404);
    expect(sim.stats.cancelled).toBe(1);
  });

  it('sends signed progress events in order: in_transit then delivered', async () => {
    const receiver = await startReceiver();
    const sim = await startSim({
      eventsBaseUrl: receiver.url,
      progress: { inTransitAfterMs: 50, deliveredAfterMs: 150 },
    });
    const { trackingNumber } = (await (await book(sim, 'shp-8')).json()) as { trackingNumber: string };

    await waitFor(() => receiver.events.length >= 2);
    expect(receiver.events.map((e) => e.body.status)).toEqual(['in_transit', 'delivered']);
    for (const e of receiver.events) {
      expect(e.path).toBe('/v1/carriers/acme/events');
      expect(e.contentType).toBe('application/json');
      expect(e.signature).toBe(sign(e.raw));
      expect(e.body.trackingNumber).toBe(trackingNumber);
      expect(new Date(e.body.at).toISOString()).toBe(e.body.at);
    }
    // Counted once the engine's answer is back, a moment after the receiver has the event.
    await waitFor(() => sim.stats.eventsSent === 2);
    expect(sim.stats.eventsSent).toBe(2);

    // Manual events for statuses the timeline does not produce.
    expect(await sim.sendEvent(trackingNumber, 'out_for_delivery')).toBe(202);
    const last = receiver.events.at(-1);
    expect(last?.body.status).toBe('out_for_delivery');
    expect(last?.signature).toBe(sign(last?.raw ?? ''));
  });

  it('a cancelled booking sends no further progress events', async () => {
    const receiver = await startReceiver();
    const sim = await startSim({
      eventsBaseUrl: receiver.url,
      progress: { inTransitAfterMs: 150, deliveredAfterMs: 250 },
    });
    await book(sim, 'shp-9');
    expect((await cancel(sim, 'shp-9')).status).toBe(204);
    await new Promise((r) => setTimeout(r, 400));
    expect(receiver.events).toEqual([]);
  });

  it('hang mode never answers POST /shipments, and close() still resolves', async () => {
    const sim = await startSim();
    sim.set({ hang: true });
    await expect(book(sim, 'shp-10', { signal: AbortSignal.timeout(300) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(sim.bookings.size).toBe(0);

    // Leave a second request hanging open so close() has a live socket to destroy.
    const pending = book(sim, 'shp-11').catch((err: unknown) => err);
    await waitFor(() => sim.stats.calls >= 2);
    const started = Date.now();
    await sim.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
  });
});
