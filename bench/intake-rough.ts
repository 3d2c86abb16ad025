/**
 * A rough check of POST /v1/orders throughput against a running `npm start` (not part of
 * `npm run bench`): seeds a shop and stock through the admin API, then posts ORDERS orders from
 * CONCURRENCY keep-alive clients (node:http) and prints orders/s and latency percentiles.
 *
 *   BASE_URL=http://127.0.0.1:3917 ADMIN_TOKEN=… ORDERS=2000 CONCURRENCY=50 npx tsx bench/intake-rough.ts
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';

const base = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
const adminToken = process.env.ADMIN_TOKEN ?? '';
const total = Number(process.env.ORDERS ?? 2000);
const concurrency = Number(process.env.CONCURRENCY ?? 50);
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

function call(method: 'POST' | 'PUT', path: string, token: string, body: unknown, key?: string) {
  const payload = JSON.stringify(body);
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(key ? { 'idempotency-key': key } : {}),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function seed() {
  const tag = randomBytes(3).toString('hex');
  const shop = await call('POST', '/v1/admin/shops', adminToken, {
    name: `bench-${tag}`,
    rateLimitPerMinute: 1_000_000,
  });
  if (shop.status !== 201) throw new Error(`shop: ${shop.status} ${shop.text}`);
  const warehouse = await call('POST', '/v1/admin/warehouses', adminToken, {
    id: `wh-bench-${tag}`,
    name: 'bench',
    region: 'shanghai-pudong',
  });
  if (warehouse.status !== 201) throw new Error(`warehouse: ${warehouse.status} ${warehouse.text}`);
  const stock = await call('PUT', '/v1/admin/inventory', adminToken, {
    warehouseId: `wh-bench-${tag}`,
    sku: 'MASK-N95',
    quantity: 1_000_000,
  });
  if (stock.status !== 200) throw new Error(`stock: ${stock.status} ${stock.text}`);
  return JSON.parse(shop.text).apiKey as string;
}

const body = () => ({
  externalId: `B-${randomBytes(4).toString('hex')}`,
  customer: { name: 'Li Wei', phone: '+8613800000000', email: 'li.wei@example.com' },
  shippingAddress: {
    region: 'shanghai-pudong',
    line1: '1 Century Avenue',
    city: 'Shanghai',
    postalCode: '200120',
    country: 'CN',
  },
  items: [{ sku: 'MASK-N95', quantity: 1 }],
  locale: 'en',
});

const apiKey = await seed();
// Warm-up: connections, prepared scripts, JIT.
await Promise.all(
  Array.from({ length: concurrency }, () =>
    call('POST', '/v1/orders', apiKey, body(), randomBytes(8).toString('hex')),
  ),
);

const latencies: number[] = [];
const statuses = new Map<number, number>();
let next = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      const t0 = performance.now();
      const { status } = await call('POST', '/v1/orders', apiKey, body(), randomBytes(8).toString('hex'));
      latencies.push(performance.now() - t0);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
console.log(
  JSON.stringify({
    orders: total,
    concurrency,
    seconds: Number(elapsed.toFixed(2)),
    ordersPerSecond: Number((total / elapsed).toFixed(1)),
    p50ms: Number(pct(50).toFixed(1)),
    p95ms: Number(pct(95).toFixed(1)),
    p99ms: Number(pct(99).toFixed(1)),
    statuses: Object.fromEntries(statuses),
  }),
);
agent.destroy();
