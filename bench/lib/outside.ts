/**
 * The world outside the engine, in a child process of its own (so its CPU is not the engine's):
 * a zero-latency carrier simulator, and a shop posting orders over keep-alive HTTP. Driven over
 * IPC by bench/cost.ts and bench/pipeline.ts (`fork` with `--import tsx`):
 *   { op: 'carrier', carrierId, webhookSecret, eventsBaseUrl, progress } → { url }
 *   { op: 'post', url | urls, apiKey, bodies, keyPrefix, connections } → LoadResult summary
 *     (with `urls`, several API processes: order i goes to urls[i % urls.length])
 *   { op: 'events', statuses, connections } → { sent, failed }: each booking's events, in order
 *   { op: 'set', progress } → {}: the simulator's progress events from now on
 *   { op: 'stats' } → the simulator's stats and booking count
 *   { op: 'close' }
 */
import { startCarrierSimulator, type CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { load } from './http-load.js';

let carrier: CarrierSimulator | undefined;

type Message = { id: number; op: string; [k: string]: unknown };

async function handle(m: Message): Promise<unknown> {
  switch (m.op) {
    case 'carrier': {
      carrier = await startCarrierSimulator({
        carrierId: m.carrierId as string,
        webhookSecret: m.webhookSecret as string,
        eventsBaseUrl: m.eventsBaseUrl as string,
        progress: (m.progress as { inTransitAfterMs: number; deliveredAfterMs: number } | false) ?? false,
      });
      return { url: carrier.url };
    }
    case 'post': {
      const bodies = m.bodies as object[];
      const bases = (m.urls as string[] | undefined) ?? [m.url as string];
      const result = await load({
        url: bases.map((base) => `${base}/v1/orders`),
        connections: m.connections as number,
        requests: bodies.length,
        make: (i) => ({
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${m.apiKey}`,
            'idempotency-key': `${m.keyPrefix}-${i}`,
          },
          body: JSON.stringify(bodies[i]),
        }),
      });
      return {
        wallMs: result.wallMs,
        statuses: result.statuses,
        samples: result.samples,
        errors: result.errors,
      };
    }
    case 'events': {
      if (!carrier) throw new Error('no carrier');
      const bookings = [...carrier.bookings.values()].filter((b) => !b.cancelled);
      let sent = 0;
      let failed = 0;
      let next = 0;
      await Promise.all(
        Array.from({ length: m.connections as number }, async () => {
          while (next < bookings.length) {
            const booking = bookings[next++];
            for (const status of m.statuses as string[]) {
              let ok = false;
              for (let tryNo = 0; tryNo < 8 && !ok; tryNo++) {
                const code = await carrier!.sendEvent(booking.trackingNumber, status).catch(() => 0);
                ok = code >= 200 && code < 300;
                if (!ok) await new Promise((r) => setTimeout(r, 200));
              }
              if (ok) sent++;
              else failed++;
            }
          }
        }),
      );
      return { sent, failed };
    }
    case 'set':
      carrier?.set({
        progress: m.progress as { inTransitAfterMs: number; deliveredAfterMs: number } | false,
      });
      return {};
    case 'stats':
      return { ...carrier?.stats, bookings: carrier?.bookings.size ?? 0 };
    case 'close':
      await carrier?.close();
      setImmediate(() => process.exit(0));
      return {};
  }
  throw new Error(`unknown op ${m.op}`);
}

process.on('message', (m: Message) => {
  handle(m).then(
    (result) => process.send!({ id: m.id, result }),
    (error: Error) => process.send!({ id: m.id, error: error.message }),
  );
});
process.on('disconnect', () => process.exit(0));
