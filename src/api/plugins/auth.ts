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
    /** The admin session value that authenticated this request (or that `?token=` just opened). */
    adminSession?: string;
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

/**
 * The Set-Cookie value carrying a session (a fresh one unless `value` is given); `secure` when the
 * request came over HTTPS. Path `/admin` (the board and the operations page) by default; the page
 * also sets the same value under `/v1/admin`, so its fetches carry it and nothing else does.
 */
export function adminSessionCookie(
  adminToken: string,
  options: { secure: boolean; nowSeconds?: number; path?: '/admin' | '/v1/admin'; value?: string },
): string {
  const value = options.value ?? signAdminSession(adminToken, options.nowSeconds);
  return [
    `${ADMIN_COOKIE}=${value}`,
    `Path=${options.path ?? '/admin'}`,
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

/** The header the operations page sends with its requests: a signal only same-origin script can give. */
export const ADMIN_SAME_ORIGIN_HEADER = 'x-surgeline-admin';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Operators: `Authorization: Bearer <ADMIN_TOKEN>`. With `allowCookie` (Bull Board and the
 * operations page, in a browser) also `?token=` once, which sets an HttpOnly cookie holding a
 * signed session (not the token) for the pages and assets that follow.
 * With `sessionApi` (the `/v1/admin/*` JSON the operations page fetches) the session cookie
 * authenticates as well, never `?token=` (a token in a URL ends up in histories and proxies' logs).
 */
export function adminAuthenticator(
  adminToken: string,
  options: { allowCookie?: boolean; sessionApi?: boolean } = {},
) {
  const expected = sha256(adminToken);
  const matches = (candidate: string | undefined) =>
    candidate !== undefined && safeEqual(sha256(candidate), expected);
  return async function authenticateAdmin(request: FastifyRequest, reply: FastifyReply) {
    if (matches(bearer(request))) return;
    // A caller that sends an Authorization header is judged by it alone: a wrong bearer is never
    // rescued by a cookie the browser happened to send along.
    if (options.sessionApi && request.headers.authorization === undefined) {
      const session = cookie(request, ADMIN_COOKIE);
      if (verifyAdminSession(adminToken, session)) {
        // CSRF: the browser attaches the cookie by itself, so a state-changing request riding on it
        // must also prove it comes from our own page. SameSite=Strict already keeps other sites'
        // requests cookie-less; a custom header covers the rest (a sibling subdomain, an old
        // browser): another origin cannot add one without a CORS preflight, which this API never grants.
        if (!SAFE_METHODS.has(request.method) && request.headers[ADMIN_SAME_ORIGIN_HEADER] !== '1') {
          throw new AppError(
            403,
            'same_origin_required',
            `A request authenticated by the session cookie that changes anything must send "X-Surgeline-Admin: 1" (or use the bearer token).`,
          );
        }
        request.adminSession = session;
        return;
      }
    }
    if (options.allowCookie) {
      const query = (request.query ?? {}) as Record<string, unknown>;
      const fromQuery = typeof query.token === 'string' ? query.token : undefined;
      if (matches(fromQuery)) {
        const value = signAdminSession(adminToken);
        // request.protocol honours X-Forwarded-Proto only when Fastify's trustProxy is on.
        reply.header(
          'set-cookie',
          adminSessionCookie(adminToken, { secure: request.protocol === 'https', value }),
        );
        request.adminSession = value;
        return;
      }
      const session = cookie(request, ADMIN_COOKIE);
      if (verifyAdminSession(adminToken, session)) {
        request.adminSession = session;
        return;
      }
    }
    throw unauthorized('Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>".');
  };
}
