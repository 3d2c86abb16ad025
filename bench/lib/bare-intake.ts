/**
 * The intake baseline of bench/intake.ts, run as a process of its own: a bare Fastify route
 * POST /v1/orders with the engine's body and Idempotency-Key schemas (src/api/schemas.ts) whose
 * handler does one `await queue.add()` to a BullMQ queue — no database, no auth, no rate limit.
 * Env: BARE_PREFIX (queue prefix), REDIS_URL. Tells its port to the parent over IPC.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { IdempotencyHeaders, OrderBody } from '../../src/api/schemas.js';
import { jobPriority, type Priority } from '../../src/domain/priority.js';

const connection = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 3 });
const queue = new Queue('baseline', {
  connection,
  prefix: process.env.BARE_PREFIX || 'surgeline-bench-bare',
  defaultJobOptions: { removeOnComplete: { age: 3600, count: 1000 } },
});
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.post<{ Body: OrderBody }>(
  '/v1/orders',
  { schema: { body: OrderBody, headers: IdempotencyHeaders } },
  async (request, reply) => {
    const id = randomUUID();
    await queue.add(
      'allocate',
      { orderId: id, attempt: 1 },
      {
        jobId: `allocation-${id}-1`,
        priority: jobPriority((request.body.priority ?? 'standard') as Priority),
      },
    );
    return reply.code(202).send({ id, status: 'received' });
  },
);
await app.listen({ port: 0, host: '127.0.0.1' });
const port = (app.server.address() as { port: number }).port;
process.send?.({ port });
const stop = async () => {
  await app.close();
  await queue.close();
  connection.disconnect();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
