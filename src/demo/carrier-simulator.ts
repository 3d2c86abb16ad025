/**
 * Carrier simulator: a small node:http server that plays a logistics carrier
 * partner (booking, cancellation, signed progress webhooks) so the demo and
 * the integration tests can run without a real carrier.
 *
 * Protocol (carrier side):
 *   POST   /shipments          Idempotency-Key: {shipmentId}  -> 201 | 400 | 401 | 422 | 429 | 503
 *   DELETE /shipments/{id}                                    -> 204 | 401 | 404
 * Events (simulator -> Surgeline):
 *   POST {eventsBaseUrl}/v1/carriers/{carrierId}/events  { trackingNumber, status, at }
 *   signed with X-Signature: sha256=<hex HMAC-SHA256(rawBody, webhookSecret)>
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CarrierSimulatorOptions {
  carrierId: string;
  webhookSecret: string;
  apiKey?: string;
  host?: string; // default 127.0.0.1
  port?: number; // default 0 (random free port)
  eventsBaseUrl?: string; // base of the Surgeline API, e.g. http://127.0.0.1:3000
  failureRate?: number; // 0..1, default 0
  rateLimitedRate?: number; // 0..1, default 0
  latencyMs?: number | { min: number; max: number }; // default 0
  refuseRegions?: string[]; // default []
  transitHours?: number; // default 24
  progress?: { inTransitAfterMs: number; deliveredAfterMs: number } | false; // default { 200, 400 }
  /** Where failure rolls come from (default Math.random): a seeded one makes a run repeatable. */
  random?: () => number;
}

export interface SimulatedBooking {
  reference: string;
  trackingNumber: string;
  estimatedDeliveryAt: string;
  orderId: string;
  region: string;
  bookedAt: string;
  cancelled: boolean;
  bookCalls: number; // how many POSTs with this key were answered 201
}

export interface CarrierSimulator {
  readonly url: string;
  readonly bookings: Map<string, SimulatedBooking>;
  readonly stats: {
    calls: number;
    booked: number;
    transient: number;
    refused: number;
    cancelled: number;
    eventsSent: number;
    eventFailures: number;
  };
  set(
    options: Partial<
      Pick<
        CarrierSimulatorOptions,
        'failureRate' | 'rateLimitedRate' | 'latencyMs' | 'refuseRegions' | 'progress' | 'eventsBaseUrl'
      >
    > & { hang?: boolean },
  ): void;
  sendEvent(trackingNumber: string, status: string, at?: string): Promise<number>;
  close(): Promise<void>;
}

/** A report not taken (non-2xx, no answer) is sent again, backing off: 0.2, 0.4, 0.8, 1.6, then 2 s — about 9 s in all, like a carrier's webhook retries. */
const EVENT_MAX_TRIES = 8;
const EVENT_RETRY_DELAY_MS = 200;
const EVENT_RETRY_MAX_DELAY_MS = 2000;
const MAX_BODY_BYTES = 1_000_000;

export function signCarrierBody(rawBody: string, secret: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(rawBody).digest('hex');
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };

export async function startCarrierSimulator(options: CarrierSimulatorOptions): Promise<CarrierSimulator> {
  const { carrierId, webhookSecret, apiKey } = options;
  const transitHours = options.transitHours ?? 24;
  // Runtime-tunable settings (see set()).
  const cfg = {
    failureRate: options.failureRate ?? 0,
    rateLimitedRate: options.rateLimitedRate ?? 0,
    latencyMs: options.latencyMs ?? 0,
    refuseRegions: options.refuseRegions ?? [],
    progress: options.progress ?? { inTransitAfterMs: 200, deliveredAfterMs: 400 },
    eventsBaseUrl: options.eventsBaseUrl,
    hang: false,
  };

  const bookings = new Map<string, SimulatedBooking>();
  const stats = {
    calls: 0,
    booked: 0,
    transient: 0,
    refused: 0,
    cancelled: 0,
    eventsSent: 0,
    eventFailures: 0,
  };
  // Bumped on every (re)activation so a stale progress run stops when a
  // cancelled booking is booked again and a fresh run starts.
  const progressRun = new Map<string, number>();
  let closed = false;

  // Every pending wait is tracked so close() can clear its timer and settle it
  // (resolves false), leaving no timers and no stuck async chains behind.
  const waits = new Set<{ timer: NodeJS.Timeout; resolve: (elapsed: boolean) => void }>();
  function wait(ms: number): Promise<boolean> {
    if (closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(
          () => {
            waits.delete(entry);
            resolve(true);
          },
          Math.max(0, ms),
        ),
        resolve,
      };
      entry.timer.unref();
      waits.add(entry);
    });
  }

  function latency(): number {
    const l = cfg.latencyMs;
    if (typeof l === 'number') return l;
    return l.min + Math.random() * (l.max - l.min);
  }

  async function postEvent(trackingNumber: string, status: string, at: string): Promise<number> {
    if (!cfg.eventsBaseUrl) throw new Error('carrier simulator: eventsBaseUrl is not set');
    const body = JSON.stringify({ trackingNumber, status, at });
    const res = await fetch(
      `${cfg.eventsBaseUrl.replace(/\/+$/, '')}/v1/carriers/${encodeURIComponent(carrierId)}/events`,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Signature': signCarrierBody(body, webhookSecret),
        },
        body,
        signal: AbortSignal.timeout(5000),
      },
    );
    await res.arrayBuffer().catch(() => undefined); // drain so the socket can be reused
    return res.status;
  }

  /** Sends one progress event with retries; stops early if closed or the booking is no longer current. */
  async function deliverEvent(
    booking: SimulatedBooking,
    status: string,
    isCurrent: () => boolean,
  ): Promise<void> {
    for (let attempt = 1; attempt <= EVENT_MAX_TRIES; attempt++) {
      if (closed || !isCurrent() || !cfg.eventsBaseUrl) return;
      try {
        // `at` is taken at send time, per the contract.
        const status2xx = await postEvent(booking.trackingNumber, status, new Date().toISOString());
        if (status2xx >= 200 && status2xx < 300) {
          stats.eventsSent++;
          return;
        }
      } catch {
        // network error / timeout: retry below
      }
      const delay = Math.min(EVENT_RETRY_DELAY_MS * 2 ** (attempt - 1), EVENT_RETRY_MAX_DELAY_MS);
      if (attempt < EVENT_MAX_TRIES && !(await wait(delay))) return;
    }
    if (!closed) stats.eventFailures++;
  }

  /** in_transit then delivered, sequentially so they always arrive in order. */
  async function runProgress(booking: SimulatedBooking): Promise<void> {
    const progress = cfg.progress;
    if (!progress || !cfg.eventsBaseUrl) return;
    const run = (progressRun.get(booking.reference) ?? 0) + 1;
    progressRun.set(booking.reference, run);
    const isCurrent = () => !booking.cancelled && progressRun.get(booking.reference) === run;
    const start = Date.now();
    if (!(await wait(progress.inTransitAfterMs))) return;
    await deliverEvent(booking, 'in_transit', isCurrent);
    // deliveredAfterMs is measured from booking, not from the in_transit send.
    if (!(await wait(start + progress.deliveredAfterMs - Date.now()))) return;
    await deliverEvent(booking, 'delivered', isCurrent);
  }

  function readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) reject(new Error('body too large'));
        else chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  /** Returns the reply to send, or null to never answer (hang mode). */
  async function handle(req: IncomingMessage): Promise<Reply | null> {
    stats.calls++;
    const path = new URL(req.url ?? '/', 'http://carrier.invalid').pathname.replace(/\/+$/, '');

    if (apiKey !== undefined && req.headers.authorization !== `Bearer ${apiKey}`) {
      return { status: 401, body: { error: 'unauthorized' } };
    }

    if (req.method === 'POST' && path === '/shipments') {
      const raw = await readBody(req);
      const key = req.headers['idempotency-key'];
      if (typeof key !== 'string' || key.trim() === '') {
        return { status: 400, body: { error: 'missing_idempotency_key' } };
      }
      let payload: unknown;
      try {
        payload = JSON.parse(raw);
      } catch {
        return { status: 400, body: { error: 'invalid_json' } };
      }
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
        return { status: 400, body: { error: 'invalid_body' } };
      }
      if (cfg.hang) return null;

      // Transient failures happen before anything is booked.
      const roll = (options.random ?? Math.random)();
      if (roll < cfg.failureRate) {
        stats.transient++;
        return { status: 503, body: { error: 'unavailable' } };
      }
      if (roll < cfg.failureRate + cfg.rateLimitedRate) {
        stats.transient++;
        return { status: 429, body: { error: 'rate_limited' }, headers: { 'Retry-After': '1' } };
      }

      const fields = payload as Record<string, unknown>;
      const region = String(fields.region ?? '');
      const existing = bookings.get(key);
      if (existing && !existing.cancelled) {
        // Idempotent replay: same answer, no second booking.
        existing.bookCalls++;
        return {
          status: 201,
          body: {
            trackingNumber: existing.trackingNumber,
            estimatedDeliveryAt: existing.estimatedDeliveryAt,
          },
        };
      }
      if (cfg.refuseRegions.includes(region)) {
        stats.refused++;
        return { status: 422, body: { error: 'region_unserviceable' } };
      }

      const now = Date.now();
      let booking: SimulatedBooking;
      if (existing) {
        // A cancelled booking re-POSTed with its key is re-activated, keeping its tracking number.
        booking = existing;
        booking.cancelled = false;
        booking.bookCalls++;
        booking.bookedAt = new Date(now).toISOString();
        booking.estimatedDeliveryAt = new Date(now + transitHours * 3_600_000).toISOString();
      } else {
        booking = {
          reference: key,
          trackingNumber: `${carrierId.toUpperCase()}-${randomBytes(6).toString('hex').toUpperCase()}`,
          estimatedDeliveryAt: new Date(now + transitHours * 3_600_000).toISOString(),
          orderId: String(fields.orderId ?? ''),
          region,
          bookedAt: new Date(now).toISOString(),
          cancelled: false,
          bookCalls: 1,
        };
        bookings.set(key, booking);
      }
      stats.booked++;
      void runProgress(booking);
      return {
        status: 201,
        body: { trackingNumber: booking.trackingNumber, estimatedDeliveryAt: booking.estimatedDeliveryAt },
      };
    }

    const cancelMatch = /^\/shipments\/([^/]+)$/.exec(path);
    if (req.method === 'DELETE' && cancelMatch) {
      const booking = bookings.get(decodeURIComponent(cancelMatch[1]));
      if (!booking || booking.cancelled) return { status: 404, body: { error: 'not_found' } };
      booking.cancelled = true; // the progress run checks this before every send
      stats.cancelled++;
      return { status: 204 };
    }

    return { status: 404, body: { error: 'not_found' } };
  }

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply | null;
    try {
      reply = await handle(req);
    } catch {
      reply = { status: 400, body: { error: 'bad_request' } };
    }
    if (reply === null) return; // hang: the socket stays open until the client gives up or close()
    // Latency is applied after processing, so a client that times out may still
    // have booked: the ambiguous case idempotency keys exist for.
    const delay = latency();
    if (delay > 0 && !(await wait(delay))) return;
    if (res.destroyed) return;
    const headers: Record<string, string> = { ...reply.headers };
    let payload: string | undefined;
    if (reply.body !== undefined) {
      payload = JSON.stringify(reply.body);
      headers['Content-Type'] = 'application/json';
    }
    res.writeHead(reply.status, headers).end(payload);
  }

  const server = createServer((req, res) => void respond(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    bookings,
    stats,
    set(update) {
      for (const [k, v] of Object.entries(update)) {
        if (v !== undefined) (cfg as Record<string, unknown>)[k] = v;
      }
    },
    sendEvent(trackingNumber, status, at) {
      return postEvent(trackingNumber, status, at ?? new Date().toISOString());
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const w of waits) {
        clearTimeout(w.timer);
        w.resolve(false);
      }
      waits.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // also drops hung requests
      await done;
    },
  };
}
