import { createHash, randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../../db/client.js';
import { shops } from '../../db/schema.js';
import { safeEqual } from '../../domain/signing.js';
import { AppError } from '../../errors.js';

export type ShopRow = typeof shops.$inferSelect;

declare module 'fastify' {
  interface FastifyRequest {
    shop?: ShopRow;
  }
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * A shop key is `sk_<keyId>_<secret>`: the key id finds the shop, the secret is compared with
 * its stored hash in constant time. Only the hash is kept.
 */
export function newShopKey(): { apiKey: string; keyId: string; hash: string } {
  const keyId = randomBytes(9).toString('base64url');
  const secret = randomBytes(24).toString('base64url');
  return { apiKey: `sk_${keyId}_${secret}`, keyId, hash: sha256(secret) };
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

const unauthorized = (detail: string) =>
  new AppError(401, 'unauthorized', detail, undefined, { 'www-authenticate': 'Bearer' });

export function shopAuthenticator(db: Db) {
  return async function authenticateShop(request: FastifyRequest) {
    const token = bearer(request);
    if (!token) throw unauthorized('Send the shop API key as "Authorization: Bearer <key>".');
    const match = /^sk_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]+)$/.exec(token);
    const [shop] = match ? await db.select().from(shops).where(eq(shops.apiKeyId, match[1])) : [];
    // Hash and compare even when no shop matched, so timing does not tell which part was wrong.
    const valid = safeEqual(sha256(match?.[2] ?? token), shop?.apiKeyHash ?? sha256('no shop'));
    if (!shop || !valid) throw unauthorized('The API key is not valid.');
    request.shop = shop;
  };
}

export function shopOf(request: FastifyRequest): ShopRow {
  if (!request.shop) throw new Error('shop route without shop authentication');
  return request.shop;
}

export const ADMIN_COOKIE = 'surgeline_admin';

function cookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

/**
 * Operators: `Authorization: Bearer <ADMIN_TOKEN>`. With `allowCookie` (Bull Board, a browser)
 * also `?token=` once, which sets an HttpOnly cookie for the pages and assets that follow.
 */
export function adminAuthenticator(adminToken: string, options: { allowCookie?: boolean } = {}) {
  const expected = sha256(adminToken);
  const matches = (candidate: string | undefined) =>
    candidate !== undefined && safeEqual(sha256(candidate), expected);
  return async function authenticateAdmin(request: FastifyRequest, reply: FastifyReply) {
    if (matches(bearer(request))) return;
    if (options.allowCookie) {
      const query = (request.query ?? {}) as Record<string, unknown>;
      const fromQuery = typeof query.token === 'string' ? query.token : undefined;
      if (matches(fromQuery)) {
        reply.header(
          'set-cookie',
          `${ADMIN_COOKIE}=${encodeURIComponent(adminToken)}; Path=/admin; HttpOnly; SameSite=Strict`,
        );
        return;
      }
      if (matches(cookie(request, ADMIN_COOKIE))) return;
    }
    throw unauthorized('Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>".');
  };
}
