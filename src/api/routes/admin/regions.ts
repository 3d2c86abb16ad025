import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { activeLockdowns, liftLockdown, putLockdown, type LockdownRow } from '../../../db/lockdowns.js';
import { AppError, notFound } from '../../../errors.js';
import { forgetCachedLockdowns, requestResume } from '../../../steps/lockdown.js';
import { iso } from '../../format.js';
import { ADMIN_ERRORS, BODY_ERRORS, Lockdown, LockdownList, NoContent, problems } from '../../responses.js';
import { ShippingAddress } from '../../schemas.js';

const tags = ['operators'];

/** A region in a path: the same pattern as an address's region; anything else names nothing (404). */
const RegionParams = Type.Object(
  { region: ShippingAddress.properties.region },
  { additionalProperties: false },
);

const LockdownBody = Type.Object(
  {
    reason: Type.String({
      minLength: 1,
      maxLength: 500,
      description: 'shown as the detail of each held order',
    }),
    until: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'RFC 3339, in the future: the lockdown lifts by itself then',
      }),
    ),
  },
  { additionalProperties: false },
);

function lockdownView(row: LockdownRow) {
  return {
    region: row.region,
    reason: row.reason,
    until: iso(row.until),
    since: row.createdAt.toISOString(),
  };
}

export const regionRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.put(
    '/v1/admin/regions/:region/lockdown',
    {
      schema: {
        tags,
        summary:
          'Lock a region down: its orders go on_hold (a second PUT replaces the first) → 200 { region, reason, until, since }',
        params: RegionParams,
        body: LockdownBody,
        response: { 200: Lockdown, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 404) },
      },
    },
    async (request) => {
      const now = new Date();
      const until = request.body.until === undefined ? null : new Date(request.body.until);
      if (until && !(until.getTime() > now.getTime())) {
        throw new AppError(400, 'validation_failed', 'The request is not valid; see errors.', {
          errors: [{ path: 'body/until', message: 'must be in the future' }],
        });
      }
      const row = await putLockdown(
        ctx.db,
        { region: request.params.region, reason: request.body.reason, until },
        now,
      );
      forgetCachedLockdowns(ctx);
      return lockdownView(row);
    },
  );

  app.delete(
    '/v1/admin/regions/:region/lockdown',
    {
      schema: {
        tags,
        summary:
          "Lift a region's lockdown → 204; its held orders resume, highest priority first (no lockdown → 404)",
        params: RegionParams,
        response: { 204: NoContent, ...problems(...ADMIN_ERRORS, 404) },
      },
    },
    async (request, reply) => {
      const lifted = await liftLockdown(ctx.db, request.params.region);
      if (!lifted) throw notFound('lockdown');
      forgetCachedLockdowns(ctx);
      // The held orders resume in a worker process (the lockdown timer), a page at a time.
      await requestResume(ctx, lifted.region);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/admin/regions/lockdowns',
    {
      schema: {
        tags,
        summary: 'Lockdowns in force, oldest first → 200 { items: [{ region, reason, until, since }] }',
        response: { 200: LockdownList, ...problems(...ADMIN_ERRORS) },
      },
    },
    async () => ({ items: (await activeLockdowns(ctx.db)).map(lockdownView) }),
  );
};
