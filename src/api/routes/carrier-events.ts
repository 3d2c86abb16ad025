import { eq } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Context } from '../../context.js';
import { applyCarrierEvent } from '../../db/carrier-events.js';
import { carriers } from '../../db/schema.js';
import type { Priority } from '../../domain/priority.js';
import { verifyCarrierSignature } from '../../domain/signing.js';
import { AppError, notFound } from '../../errors.js';
import { enqueueNotifications } from '../../queues/enqueue.js';
import { CarrierEventBody, CarrierIdParams } from '../schemas.js';

export async function carrierEventRoutes(app: FastifyInstance, { ctx }: { ctx: Context }) {
  app.post<{ Params: { carrierId: string }; Body: CarrierEventBody }>(
    '/v1/carriers/:carrierId/events',
    {
      schema: {
        tags: ['carriers'],
        summary: 'A carrier reports parcel progress (X-Signature: sha256=<HMAC of the raw body>)',
        params: CarrierIdParams,
        body: CarrierEventBody,
      },
      // The signature is checked on the raw bytes, before the body is validated.
      preValidation: async (request: FastifyRequest<{ Params: { carrierId: string } }>) => {
        const [carrier] = await ctx.db
          .select()
          .from(carriers)
          .where(eq(carriers.id, request.params.carrierId));
        if (!carrier) throw notFound('carrier');
        const signature = request.headers['x-signature'];
        if (
          !verifyCarrierSignature(
            request.rawBody ?? '',
            carrier.webhookSecret,
            typeof signature === 'string' ? signature : undefined,
          )
        ) {
          throw new AppError(
            401,
            'invalid_signature',
            'X-Signature does not match the body signed with the carrier secret.',
          );
        }
      },
    },
    async (request) => {
      const { trackingNumber, status, at } = request.body;
      const applied = await applyCarrierEvent(ctx.db, request.params.carrierId, {
        trackingNumber,
        status,
        at: new Date(at),
      });
      if (applied)
        await enqueueNotifications(ctx, applied.notificationIds, applied.order.priority as Priority);
      return { accepted: true };
    },
  );
}
