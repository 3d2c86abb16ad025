import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderEvents } from '../../src/db/schema.js';
import type { Priority } from '../../src/domain/priority.js';
import { TOPOLOGY } from '../../src/queues/topology.js';
import {
  createShop,
  createWarehouse,
  newKey,
  orderBody,
  setStock,
  shopHeaders,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  uniquePrefix,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

describe('queues: every job prioritised, ids derived from the work, finished jobs trimmed', () => {
  let db: TestDatabase;
  let api: TestServer;
  let workers: TestServer | undefined;
  let apiKey: string;
  const prefix = uniquePrefix();
  const placed: Record<string, string> = {};

  beforeAll(async () => {
    db = await testDatabase();
    // No worker serves allocation yet: the jobs wait in Redis where the test can read them.
    api = await startTestServer(db.database, {
      env: { QUEUE_PREFIX: prefix, WORKER_QUEUES: 'notification' },
    });
    apiKey = (await createShop(api.app)).apiKey;
    await createWarehouse(api.app, 'wh-q');
    await setStock(api.app, 'wh-q', 'MASK-N95', 100);
    // Standard first, essential last: priority, not arrival, must decide the order of work.
    for (const priority of ['standard', 'express', 'essential']) {
      const response = await api.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: shopHeaders(apiKey, newKey()),
        payload: orderBody({ priority, notify: { channels: ['sms'] } }),
      });
      expect(response.statusCode).toBe(202);
      placed[priority] = response.json().id;
    }
  });

  afterAll(async () => {
    await workers?.close();
    await api?.close();
    await db?.drop();
  });

  it('puts each class in its own lane, every job with an explicit priority, under ids derived from the order', async () => {
    for (const [priority, id] of Object.entries(placed)) {
      const lane = api.ctx.queues.lanes.allocation.byClass[priority as Priority];
      expect(lane.name).toBe(`allocation.${priority}`);
      const job = await lane.getJob(TOPOLOGY.allocation.jobId({ orderId: id, attempt: 1 }));
      expect(job?.data).toEqual({ orderId: id, attempt: 1 });
      // The shop's turn in the lane: its first order there.
      expect(job?.opts.priority).toBe(1);
      expect(job?.opts.removeOnComplete).toMatchObject({
        age: expect.any(Number),
        count: expect.any(Number),
      });
      expect(job?.opts.removeOnFail).toMatchObject({ age: expect.any(Number), count: expect.any(Number) });
    }
  });

  it('gives notification jobs the priority of their order', async () => {
    const jobs = await api.ctx.queues.notification.sms.getJobs([
      'prioritized',
      'waiting',
      'active',
      'completed',
    ]);
    expect(jobs.length).toBeGreaterThanOrEqual(3);
    for (const job of jobs) expect([1, 2, 3]).toContain(job.opts.priority);
  });

  it('enqueueing the same stage twice keeps one job', async () => {
    const id = placed.standard;
    await api.ctx.queues.add('allocation', { orderId: id, attempt: 1 }, { priority: 'standard' });
    const counts = await api.ctx.queues.byName.allocation.getJobCounts('prioritized', 'waiting');
    expect(counts.prioritized + counts.waiting).toBe(3);
  });

  it('a single worker takes essential before express before standard', async () => {
    // The lanes paused while the worker process starts: its three lane workers are all waiting
    // when the jobs become takeable, as in a running engine. (Started cold against a full queue,
    // which lane's first job reaches the gate first is a race that the gate's gathering moment,
    // GATHER_MS, settles only on an unloaded machine.)
    const allocation = api.ctx.queues.byName.allocation;
    await allocation.pause();
    workers = await startTestServer(db.database, {
      env: { QUEUE_PREFIX: prefix, WORKER_QUEUES: 'allocation', WORKER_CONCURRENCY: '1' },
    });
    await waitFor(async () => (await allocation.getWorkersCount()) > 0, 'the lane workers to connect');
    await allocation.resume();
    const allocatedAt = async (orderId: string) => {
      const [event] = await db.database.db
        .select()
        .from(orderEvents)
        .where(and(eq(orderEvents.orderId, orderId), eq(orderEvents.status, 'allocated')));
      return event?.recordedAt;
    };
    const times = await waitFor(async () => {
      const all = await Promise.all(['essential', 'express', 'standard'].map((p) => allocatedAt(placed[p])));
      return all.every(Boolean) ? (all as Date[]) : undefined;
    }, 'all three orders allocated');
    expect(times[0].getTime()).toBeLessThanOrEqual(times[1].getTime());
    expect(times[1].getTime()).toBeLessThanOrEqual(times[2].getTime());
  });
});
