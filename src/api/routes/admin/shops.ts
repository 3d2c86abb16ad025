import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { createShop } from '../../../db/shops.js';
import { newShopKey } from '../../plugins/auth.js';
import { ADMIN_ERRORS, BODY_ERRORS, problems, ShopCreated } from '../../responses.js';
import { ShopBody } from '../../schemas.js';

export const shopRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.post(
    '/v1/admin/shops',
    {
      schema: {
        tags: ['operators'],
        summary: 'Create a shop (its API key is shown once)',
        body: ShopBody,
        response: { 201: ShopCreated, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS) },
      },
    },
    async (request, reply) => {
      const key = newShopKey();
      const webhookSecret = `whsec_${randomBytes(24).toString('base64url')}`;
      const shop = await createShop(ctx.db, {
        id: randomUUID(),
        name: request.body.name,
        apiKeyId: key.keyId,
        apiKeyHash: key.hash,
        webhookUrl: request.body.webhookUrl ?? null,
        webhookSecret,
        rateLimitPerMinute: request.body.rateLimitPerMinute ?? 600,
      });
      return reply.code(201).send({
        id: shop.id,
        name: shop.name,
        webhookUrl: shop.webhookUrl,
        rateLimitPerMinute: shop.rateLimitPerMinute,
        apiKey: key.apiKey,
        webhookSecret,
      });
    },
  );
};
