/**
 * A small scriptable carrier for end-to-end tests of dispatch: a node:http server speaking the
 * contract's carrier protocol (POST /shipments with Idempotency-Key, DELETE /shipments/{id}) whose
 * answers a test scripts call by call, and which logs every call with its arrival and answer times
 * (the simulator in src/demo keeps no per-call log, so the order and spacing of calls can't be seen
 * there). Plus the check every dispatch test ends with: no parcel booked twice at one carrier, none
 * live at two.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createCarrier } from './fixtures.js';
import { freePort } from './worker-process.js';

export const CARRIER_SECRET = 'carrier-secret-123';
export const CARRIER_API_KEY = 'scripted-carrier-key';

export interface CarrierCall {
  method: string;
  /** POST: the Idempotency-Key; DELETE: the id in the path. */
  reference: string;
  /** The n-th call of this method for this reference, from 1. */
  n: number;
  orderId?: string;
  region?: string;
  priority?: string;
  /** Whether the call carried `Authorization: Bearer {apiKey}`. */
  authorized: boolean;
  /** The caller's TCP port (tells apart the processes calling). */
  remotePort: number | undefined;
  /** Arrival, ms since the epoch. */
  at: number;
  /** When the answer was written; null while pending, or never (hang, or the caller gave up first). */
  answeredAt: number | null;
  status: number | null;
}

/**
 * What the carrier does with a call. `book` books the parcel at once (or replays a live booking of
 * the same key, or re-activates a cancelled one, as the simulator does) and answers 201 after
 * `delayMs` — a delay past the caller's timeout leaves a booking the caller never heard of, the
 * ambiguous case. `status` answers that status, booking nothing; `cancel` (DELETE's default)
 * cancels a live booking (204) or answers 404; `hang` never answers.
 */
export type CarrierAnswer =
  | { book: true; delayMs?: number }
  | { cancel: true; delayMs?: number }
  | { status: number; headers?: Record<string, string>; delayMs?: number }
  | { hang: true };

export interface ScriptedBooking {
  reference: string;
  orderId: string;
  trackingNumber: string;
  cancelled: boolean;
  /** POSTs with this key answered by booking (first booking, replays, re-activations). */
  bookCalls: number;
  /** Times it became live: 1 unless it was re-activated after a cancel. */
  activations: number;
}

export interface ScriptedCarrier {
  readonly id: string;
  readonly url: string;
  readonly calls: CarrierCall[];
  readonly bookings: Map<string, ScriptedBooking>;
  /** Fresh bookings and re-activations (what the simulator's `stats.booked` counts). */
  readonly stats: { booked: number };
  /** Decides each call; replace it to change behaviour at run time. */
  script: (call: CarrierCall) => CarrierAnswer | undefined;
  posts(reference?: string): CarrierCall[];
  deletes(reference?: string): CarrierCall[];
  close(): Promise<void>;
}

const DEFAULTS = { POST: { book: true }, DELETE: { cancel: true } } as Record<string, CarrierAnswer>;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts a scripted carrier (not registered; see registerScriptedCarrier). */
export async function startScriptedCarrier(options: {
  id: string;
  apiKey?: string;
  script?: (call: CarrierCall) => CarrierAnswer | undefined;
}): Promise<ScriptedCarrier> {
  const apiKey = options.apiKey ?? CARRIER_API_KEY;
  const calls: CarrierCall[] = [];
  const bookings = new Map<string, ScriptedBooking>();
  const stats = { booked: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const count = new Map<string, number>();
  let closed = false;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const carrier: ScriptedCarrier = {
    id: options.id,
    url: '',
    calls,
    bookings,
    stats,
    script: options.script ?? (() => undefined),
    posts: (reference) =>
      calls.filter((c) => c.method === 'POST' && (!reference || c.reference === reference)),
    deletes: (reference) =>
      calls.filter((c) => c.method === 'DELETE' && (!reference || c.reference === reference)),
    close: async () => {},
  };

  async function respond(req: IncomingMessage, res: ServerResponse) {
    const at = Date.now();
    const path = new URL(req.url ?? '/', 'http://carrier.invalid').pathname;
    const raw = await readBody(req).catch(() => '');
    let body: Record<string, unknown> = {};
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      /* logged without fields */
    }
    const deleteMatch = /^\/shipments\/([^/]+)$/.exec(path);
    const reference =
      req.method === 'POST'
        ? String(req.headers['idempotency-key'] ?? '')
        : decodeURIComponent(deleteMatch?.[1] ?? '');
    const method = req.method ?? '';
    const key = `${method} ${reference}`;
    const n = (count.get(key) ?? 0) + 1;
    count.set(key, n);
    const call: CarrierCall = {
      method,
      reference,
      n,
      orderId: typeof body.orderId === 'string' ? body.orderId : undefined,
      region: typeof body.region === 'string' ? body.region : undefined,
      priority: typeof body.priority === 'string' ? body.priority : undefined,
      authorized: req.headers.authorization === `Bearer ${apiKey}`,
      remotePort: req.socket.remotePort,
      at,
      answeredAt: null,
      status: null,
    };
    calls.push(call);

    const known = (method === 'POST' && path === '/shipments') || (method === 'DELETE' && deleteMatch);
    const answer: CarrierAnswer = !known
      ? { status: 404 }
      : (carrier.script(call) ?? DEFAULTS[method] ?? { status: 404 });
    if ('hang' in answer) return; // the socket stays open until the caller gives up or close()

    let status: number;
    let headers: Record<string, string> = {};
    let payload: unknown;
    if ('book' in answer) {
      let booking = bookings.get(reference);
      if (!booking) {
        booking = {
          reference,
          orderId: call.orderId ?? '',
          trackingNumber: `${options.id.toUpperCase()}-${randomBytes(5).toString('hex').toUpperCase()}`,
          cancelled: false,
          bookCalls: 0,
          activations: 1,
        };
        bookings.set(reference, booking);
        stats.booked++;
      } else if (booking.cancelled) {
        booking.cancelled = false;
        booking.activations++;
        stats.booked++;
      }
      booking.bookCalls++;
      status = 201;
      payload = {
        trackingNumber: booking.trackingNumber,
        estimatedDeliveryAt: new Date(Date.now() + 24 * 3_600_000).toISOString(),
      };
    } else if ('cancel' in answer) {
      const booking = bookings.get(reference);
      if (booking && !booking.cancelled) {
        booking.cancelled = true;
        status = 204;
      } else {
        status = 404;
      }
    } else {
      status = answer.status;
      headers = answer.headers ?? {};
      payload = { error: `scripted ${status}` };
    }
    if (answer.delayMs) await sleep(answer.delayMs);
    if (closed || res.destroyed || req.socket.destroyed) return; // the caller gave up: never answered
    const text = payload === undefined ? undefined : JSON.stringify(payload);
    res
      .writeHead(status, text === undefined ? headers : { ...headers, 'content-type': 'application/json' })
      .end(text);
    call.answeredAt = Date.now();
    call.status = status;
  }

  const server = createServer((req, res) => void respond(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(carrier, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
    },
  });
  return carrier;
}

/** Starts a scripted carrier and registers it (POST /v1/admin/carriers); `carrier` adds to the body. */
export async function registerScriptedCarrier(
  app: FastifyInstance,
  options: { id: string; script?: (call: CarrierCall) => CarrierAnswer | undefined },
  carrier: Record<string, unknown> = {},
): Promise<ScriptedCarrier> {
  const started = await startScriptedCarrier(options);
  try {
    await createCarrier(app, {
      id: options.id,
      baseUrl: started.url,
      apiKey: CARRIER_API_KEY,
      webhookSecret: CARRIER_SECRET,
      ...carrier,
    });
  } catch (error) {
    await started.close();
    throw error;
  }
  return started;
}

/** Registers a carrier whose baseUrl nothing listens on: every call is a refused connection. */
export async function registerDownCarrier(
  app: FastifyInstance,
  id: string,
  carrier: Record<string, unknown> = {},
) {
  const port = await freePort();
  await createCarrier(app, {
    id,
    baseUrl: `http://127.0.0.1:${port}`,
    webhookSecret: CARRIER_SECRET,
    ...carrier,
  });
}

/** What doubleBookings reads of a carrier: the simulator and the scripted carrier both have it. */
export interface CarrierRecords {
  id: string;
  carrier: {
    bookings: Map<string, { reference: string; orderId: string; cancelled: boolean }>;
    stats: { booked: number };
  };
}

/**
 * Every way the carriers' own records show a parcel booked more than once: a carrier that booked
 * (or re-activated) more often than it holds references, a reference live at two carriers, an
 * order (of one parcel) live under two references. Empty when all is well.
 */
export function doubleBookings(carriers: CarrierRecords[]): string[] {
  const problems: string[] = [];
  const liveAt = new Map<string, string[]>();
  const liveOfOrder = new Map<string, string[]>();
  for (const { id, carrier } of carriers) {
    if (carrier.stats.booked !== carrier.bookings.size)
      problems.push(
        `${id} booked ${carrier.stats.booked} times for ${carrier.bookings.size} references (a parcel booked twice)`,
      );
    for (const booking of carrier.bookings.values()) {
      if (booking.cancelled) continue;
      liveAt.set(booking.reference, [...(liveAt.get(booking.reference) ?? []), id]);
      liveOfOrder.set(booking.orderId, [
        ...(liveOfOrder.get(booking.orderId) ?? []),
        `${id}:${booking.reference}`,
      ]);
    }
  }
  for (const [reference, at] of liveAt)
    if (at.length > 1) problems.push(`parcel ${reference} is live at ${at.join(' and ')}`);
  for (const [orderId, refs] of liveOfOrder)
    if (refs.length > 1) problems.push(`order ${orderId} is live as ${refs.join(' and ')}`);
  return problems;
}

/** The largest number of `times` (ms) inside any window of `windowMs` (each window starting at one of them). */
export function maxInWindow(times: number[], windowMs = 1000): { count: number; from: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = { count: 0, from: sorted[0] ?? 0 };
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j] < sorted[i] + windowMs) j++;
    if (j - i > best.count) best = { count: j - i, from: sorted[i] };
  }
  return best;
}
