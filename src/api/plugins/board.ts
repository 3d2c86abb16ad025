import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Queues } from '../../queues/producer.js';
import { AppError } from '../../errors.js';
import { adminAuthenticator } from './auth.js';
import { sendProblem } from './errors.js';

const BASE_PATH = '/admin/queues';
/** How often the board looks for carriers it does not show yet. */
const CARRIER_LOOK_MS = 5_000;

/**
 * Bull Board at /admin/queues, every queue, behind the admin token: bearer, or `?token=` once,
 * which sets a signed 12 h session cookie (see adminAuthenticator) for the pages and API calls after.
 */
export async function registerBoard(
  app: FastifyInstance,
  queues: Queues,
  adminToken: string,
  carrierIds?: () => Promise<string[]>,
) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BASE_PATH);
  const board = createBullBoard({
    queues: queues.stageQueues().map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Surgeline' } },
  });
  // Carriers come and go at run time: their booking queues join the board as they are seen.
  const shown = new Set<string>();
  let lastLook = 0;
  const showCarrierQueues = async () => {
    if (Date.now() - lastLook < CARRIER_LOOK_MS || !carrierIds) return;
    lastLook = Date.now();
    for (const id of await carrierIds()) {
      if (shown.has(id)) continue;
      shown.add(id);
      for (const lane of queues.carrierQueue(id).all) board.addQueue(new BullMQAdapter(lane));
    }
  };
  const authenticate = adminAuthenticator(adminToken, { allowCookie: true });
  await app.register(async (scope) => {
    // Bull Board sets its own error handler (a plain 500), so refusals are answered here as problem+json.
    scope.addHook('onRequest', async (request, reply) => {
      try {
        await authenticate(request, reply);
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        if (error.headers) reply.headers(error.headers);
        return sendProblem(reply, { status: error.status, code: error.code, detail: error.message });
      }
      await showCarrierQueues().catch(() => undefined); // the database away: show what is known
      // Its API reads Redis, and BullMQ would wait for Redis to come back rather than fail.
      if (request.url.startsWith(`${BASE_PATH}/api/`) && !queues.backend.connected()) {
        reply.header('retry-after', '5');
        return sendProblem(reply, {
          status: 503,
          code: 'unavailable',
          detail: 'Redis is not answering; retry shortly.',
        });
      }
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: BASE_PATH });
  });
}
