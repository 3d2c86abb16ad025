import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Context } from '../../context.js';
import { applyCarrierEvent, authenticateCarrierEvent } from '../../steps/carrier-event.js';
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
        const signature = request.headers['x-signature'];
        await authenticateCarrierEvent(
          ctx,
          request.params.carrierId,
          request.rawBody ?? '',
          typeof signature === 'string' ? signature : undefined,
        );
      },
    },
    async (request) => {
      const { trackingNumber, status, at } = request.body;
      await applyCarrierEvent(ctx, request.params.carrierId, { trackingNumber, status, at: new Date(at) });
      return { accepted: true };
    },
  );
}
