import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_COOKIE,
  ADMIN_SESSION_TTL_SECONDS,
  adminSessionCookie,
  signAdminSession,
  verifyAdminSession,
} from '../../src/api/plugins/auth.js';
import {
  ADMIN_TOKEN,
  startTestServer,
  testDatabase,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const now = () => Math.floor(Date.now() / 1000);

function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
}

/** The one Set-Cookie of a response, its `name=value` and its attributes (lower-cased). */
function sessionCookieOf(response: Response) {
  const all = response.headers.getSetCookie();
  expect(all).toHaveLength(1);
  const [pair, ...attributes] = all[0].split(';').map((part) => part.trim());
  const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
  return { raw: all[0], name, value, pair, attributes: attributes.map((a) => a.toLowerCase()) };
}

describe('admin session values', () => {
  it('sign and verify: the value is an expiry and a MAC, never the token', () => {
    const at = now();
    const value = signAdminSession(ADMIN_TOKEN, at);
    expect(value).toMatch(/^\d+\.[0-9a-f]{64}$/);
    expect(value).not.toContain(ADMIN_TOKEN);
    expect(Number(value.split('.')[0])).toBe(at + ADMIN_SESSION_TTL_SECONDS);
    expect(ADMIN_SESSION_TTL_SECONDS).toBe(12 * 3600);
    expect(verifyAdminSession(ADMIN_TOKEN, value, at)).toBe(true);
  });

  it('expires after 12 h', () => {
    const at = now();
    const value = signAdminSession(ADMIN_TOKEN, at);
    expect(verifyAdminSession(ADMIN_TOKEN, value, at + ADMIN_SESSION_TTL_SECONDS - 1)).toBe(true);
    expect(verifyAdminSession(ADMIN_TOKEN, value, at + ADMIN_SESSION_TTL_SECONDS)).toBe(false);
    expect(verifyAdminSession(ADMIN_TOKEN, value, at + ADMIN_SESSION_TTL_SECONDS + 3600)).toBe(false);
  });

  it('refuses tampered, malformed and foreign values; a new ADMIN_TOKEN invalidates every session', () => {
    const value = signAdminSession(ADMIN_TOKEN);
    const [expiry, mac] = value.split('.');
    const flipped = `${expiry}.${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`;
    expect(verifyAdminSession(ADMIN_TOKEN, flipped)).toBe(false);
    expect(verifyAdminSession(ADMIN_TOKEN, `${Number(expiry) + 3600}.${mac}`)).toBe(false);
    for (const bad of [undefined, '', ADMIN_TOKEN, mac, `${expiry}.`, `.${mac}`, `${expiry}.${mac}x`]) {
      expect(verifyAdminSession(ADMIN_TOKEN, bad)).toBe(false);
    }
    expect(verifyAdminSession('another-admin-token-xyz', value)).toBe(false);
    expect(verifyAdminSession(ADMIN_TOKEN, signAdminSession('another-admin-token-xyz'))).toBe(false);
  });

  it('the cookie is HttpOnly, SameSite=Strict, Path=/admin, and Secure only over HTTPS', () => {
    const plain = adminSessionCookie(ADMIN_TOKEN, { secure: false });
    const secure = adminSessionCookie(ADMIN_TOKEN, { secure: true });
    for (const cookie of [plain, secure]) {
      const parts = cookie.split('; ');
      expect(parts[0]).toMatch(new RegExp(`^${ADMIN_COOKIE}=\\d+\\.[0-9a-f]{64}$`));
      expect(parts).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/admin']));
      expect(cookie).not.toContain(ADMIN_TOKEN);
    }
    expect(plain.split('; ')).not.toContain('Secure');
    expect(secure.split('; ')).toContain('Secure');
  });
});

describe('Bull Board session cookie', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const board = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/admin/queues${path}`, { headers, signal: AbortSignal.timeout(15_000) });

  async function login(headers: Record<string, string> = {}) {
    const response = await board(`?token=${encodeURIComponent(ADMIN_TOKEN)}`, headers);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    return sessionCookieOf(response);
  }

  it('?token= sets a cookie that holds no token, HttpOnly, SameSite=Strict, not Secure over HTTP', async () => {
    const cookie = await login();
    expect(cookie.name).toBe(ADMIN_COOKIE);
    expect(cookie.raw).not.toContain(ADMIN_TOKEN);
    expect(cookie.raw).not.toContain(encodeURIComponent(ADMIN_TOKEN));
    expect(cookie.value).toMatch(/^\d+\.[0-9a-f]{64}$/);
    const expiry = Number(cookie.value.split('.')[0]);
    expect(Math.abs(expiry - (now() + ADMIN_SESSION_TTL_SECONDS))).toBeLessThanOrEqual(5);
    expect(cookie.attributes).toEqual(expect.arrayContaining(['httponly', 'samesite=strict', 'path=/admin']));
    expect(cookie.attributes).not.toContain('secure');
  });

  it('the cookie opens the board and its API', async () => {
    const { pair } = await login();
    const page = await board('', { cookie: pair });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const api = await board('/api/queues', { cookie: `other=1; ${pair}` });
    expect(api.status).toBe(200);
    const names = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'allocation.essential',
        'allocation.express',
        'allocation.standard',
        'dispatch.essential',
        'dispatch.express',
        'dispatch.standard',
        'notification.sms',
        'notification.email',
        'notification.webhook',
      ]),
    );
  });

  it('a tampered cookie is refused with problem+json', async () => {
    const { value } = await login();
    const [expiry, mac] = value.split('.');
    const flipped = `${expiry}.${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`;
    const extended = `${Number(expiry) + 24 * 3600}.${mac}`;
    for (const forged of [flipped, extended, 'forged', encodeURIComponent(ADMIN_TOKEN), '%E0%A4%A']) {
      expectProblem(await board('/api/queues', { cookie: `${ADMIN_COOKIE}=${forged}` }), 401);
    }
  });

  it('the raw admin token as a cookie (what the old cookie held) no longer opens the board', async () => {
    expectProblem(await board('/api/queues', { cookie: `${ADMIN_COOKIE}=${ADMIN_TOKEN}` }), 401);
  });

  it('an expired cookie is refused', async () => {
    const expired = signAdminSession(ADMIN_TOKEN, now() - ADMIN_SESSION_TTL_SECONDS - 1);
    expectProblem(await board('/api/queues', { cookie: `${ADMIN_COOKIE}=${expired}` }), 401);
    const fresh = signAdminSession(ADMIN_TOKEN);
    expect((await board('/api/queues', { cookie: `${ADMIN_COOKIE}=${fresh}` })).status).toBe(200);
  });

  it('a cookie signed with another admin token is refused', async () => {
    const foreign = signAdminSession('another-admin-token-xyz');
    const response = await board('/api/queues', { cookie: `${ADMIN_COOKIE}=${foreign}` });
    expectProblem(response, 401);
    expect(((await response.json()) as { code: string }).code).toBe('unauthorized');
  });

  it('a forged X-Forwarded-Proto: https does not make the cookie Secure (trustProxy is off)', async () => {
    const cookie = await login({ 'x-forwarded-proto': 'https' });
    expect(cookie.attributes).not.toContain('secure');
  });

  it('the bearer header still opens the board, and sets no cookie', async () => {
    const response = await board('/api/queues', { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual([]);
    expectProblem(await board('?token=wrong'), 401);
    expectProblem(await board('/api/queues'), 401);
  });
});
