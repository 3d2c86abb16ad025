import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../../db/client.js';
import { findShopByKeyId, type ShopRow } from '../../db/shops.js';
import { hmacHex, safeEqual } from '../../domain/signing.js';
import { AppError } from '../../errors.js';

export type { ShopRow };

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

/** How long a process trusts a shop row it read: shops are not changed through the API once created. */
export const SHOP_CACHE_MS = 10_000;
/** Bounds the cache under a flood of distinct keys (only found shops are kept). */
const SHOP_CACHE_MAX = 10_000;

export function shopAuthenticator(db: Db) {
  // The shop row was read for every request: a third of intake's statements under a surge.
  const cache = new Map<string, { shop: ShopRow; until: number }>();
  const findShop = async (keyId: string) => {
    const hit = cache.get(keyId);
    if (hit && hit.until > Date.now()) return hit.shop;
    const shop = await findShopByKeyId(db, keyId);
    cache.delete(keyId);
    if (shop) {
      if (cache.size >= SHOP_CACHE_MAX) cache.delete(cache.keys().next().value as string);
      cache.set(keyId, { shop, until: Date.now() + SHOP_CACHE_MS });
    }
    return shop;
  };
  return async function authenticateShop(request: FastifyRequest) {
    const token = bearer(request);
    if (!token) throw unauthorized('Send the shop API key as "Authorization: Bearer <key>".');
    const match = /^sk_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]+)$/.exec(token);
    const shop = match ? await findShop(match[1]) : undefined;
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
/** How long a Bull Board session cookie is honoured after `?token=` set it. */
export const ADMIN_SESSION_TTL_SECONDS = 12 * 3600;
const ADMIN_SESSION_CONTEXT = 'surgeline-admin-session:';

const unixNow = () => Math.floor(Date.now() / 1000);

/**
 * A Bull Board session: `<expiry unix s>.<hex HMAC-SHA256(adminToken, "surgeline-admin-session:<expiry>")>`.
 * The cookie never holds the token itself, and changing ADMIN_TOKEN invalidates every session.
 */
export function signAdminSession(adminToken: string, nowSeconds = unixNow()): string {
  const expiry = nowSeconds + ADMIN_SESSION_TTL_SECONDS;
  return `${expiry}.${hmacHex(adminToken, ADMIN_SESSION_CONTEXT + expiry)}`;
}

/** Whether `value` is a session signed with this admin token and not yet expired (MAC compared in constant time). */
export function verifyAdminSession(
  adminToken: string,
  value: string | undefined,
  nowSeconds = unixNow(),
): boolean {
  const match = /^(\d{1,12})\.([0-9a-f]{64})$/.exec(value ?? '');
  // Compute and compare even for a malformed value, so timing does not tell which part was wrong.
  const expected = hmacHex(adminToken, ADMIN_SESSION_CONTEXT + (match?.[1] ?? ''));
  const valid = safeEqual(match?.[2] ?? '', expected);
  return match !== null && valid && Number(match[1]) > nowSeconds;
}

/** The Set-Cookie value carrying a fresh session; `secure` when the request came over HTTPS. */
export function adminSessionCookie(
  adminToken: string,
  options: { secure: boolean; nowSeconds?: number },
): string {
  const value = signAdminSession(adminToken, options.nowSeconds);
  return [
    `${ADMIN_COOKIE}=${value}`,
    'Path=/admin',
    `Max-Age=${ADMIN_SESSION_TTL_SECONDS}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
}

function cookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key !== name) continue;
    try {
      return decodeURIComponent(rest.join('='));
    } catch {
      return undefined; // malformed escapes: not a session of ours
    }
  }
  return undefined;
}

/**
 * Operators: `Authorization: Bearer <ADMIN_TOKEN>`. With `allowCookie` (Bull Board, a browser)
 * also `?token=` once, which sets an HttpOnly cookie holding a signed session (not the token)
 * for the pages and assets that follow.
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
        // request.protocol honours X-Forwarded-Proto only when Fastify's trustProxy is on.
        reply.header('set-cookie', adminSessionCookie(adminToken, { secure: request.protocol === 'https' }));
        return;
      }
      if (verifyAdminSession(adminToken, cookie(request, ADMIN_COOKIE))) return;
    }
    throw unauthorized('Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>".');
  };
}
