import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../context.js';
import { applyCarrierEvent, authenticateCarrierEvent } from '../../steps/carrier-event.js';
import { BODY_ERRORS, CarrierEventAccepted, problems } from '../responses.js';
import { CarrierEventBody, CarrierIdParams } from '../schemas.js';

export const carrierEventRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.post(
    '/v1/carriers/:carrierId/events',
    {
      schema: {
        tags: ['carriers'],
        summary: 'A carrier reports parcel progress (X-Signature: sha256=<HMAC of the raw body>)',
        params: CarrierIdParams,
        body: CarrierEventBody,
        response: { 200: CarrierEventAccepted, ...problems(...BODY_ERRORS, 401, 404, 409, 503) },
      },
      // The signature is checked on the raw bytes, before the body is validated.
      preValidation: async (request) => {
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
};
