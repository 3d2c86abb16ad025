import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Queues } from '../../queues/index.js';
import { adminAuthenticator } from './auth.js';

const BASE_PATH = '/admin/queues';

/** Bull Board at /admin/queues, every queue, behind the admin token (bearer, or ?token= once). */
export async function registerBoard(app: FastifyInstance, queues: Queues, adminToken: string) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BASE_PATH);
  createBullBoard({
    queues: Object.values(queues.queues).map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Surgeline' } },
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', adminAuthenticator(adminToken, { allowCookie: true }));
    await scope.register(serverAdapter.registerPlugin(), { prefix: BASE_PATH });
  });
}
