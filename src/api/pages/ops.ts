import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { adminAuthenticator, adminSessionCookie } from '../plugins/auth.js';

/**
 * The page's headers: nothing inline, nothing from another origin — scripts, styles and the
 * page's fetches come from this server (the charting library included, from node_modules).
 */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const require = createRequire(import.meta.url);
const here = (file: string) => new URL(file, import.meta.url);

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
}

/** Read once at start: the files are small and never change while the process runs. */
function asset(source: string | URL | Buffer, type: string): Asset {
  const body = Buffer.isBuffer(source) ? source : readFileSync(source);
  return { type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d2430"/>' +
  '<path d="M2 12l4-5 3 3 5-7" stroke="#9cc7ff" stroke-width="2" fill="none"/></svg>';

const ASSETS: Record<string, () => Asset> = {
  'ops.js': () => asset(here('./ops-page.js'), 'text/javascript; charset=utf-8'),
  'ops.css': () => asset(here('./ops-page.css'), 'text/css; charset=utf-8'),
  'uplot.js': () => asset(require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
  'uplot.css': () => asset(require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'),
  // Else the browser asks for /favicon.ico, which is not ours.
  'favicon.svg': () => asset(Buffer.from(FAVICON), 'image/svg+xml'),
};

/** One panel: a heading, a status line the script fills (loading, a dependency away) and its body. */
const panel = (id: string, title: string, body = '') =>
  `<section class="panel" id="${id}" data-testid="panel-${id}"><h2>${title}</h2>` +
  `<p class="state" data-testid="state-${id}">Loading…</p><div class="body">${body}</div></section>`;

/** The page itself is static: every figure is fetched by /admin/assets/ops.js from /v1/admin/*. */
export const OPS_PAGE = [
  '<!doctype html>',
  '<html lang="en">',
  '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
  '<meta name="referrer" content="no-referrer">',
  '<title>Surgeline operations</title><link rel="icon" href="/admin/assets/favicon.svg" type="image/svg+xml">',
  '<link rel="stylesheet" href="/admin/assets/uplot.css"><link rel="stylesheet" href="/admin/assets/ops.css">',
  '<script src="/admin/assets/uplot.js" defer></script><script src="/admin/assets/ops.js" defer></script>',
  '</head>',
  '<body>',
  '<header><h1>Surgeline operations</h1>',
  '<nav><label>Scorecard window <select id="window" data-testid="kpi-window">',
  '<option value="1h">1 hour</option><option value="24h" selected>24 hours</option><option value="7d">7 days</option>',
  '</select></label> <a href="/admin/queues">Queues (Bull Board)</a>',
  ' <span id="updated" data-testid="updated"></span></nav></header>',
  '<main>',
  panel('kpis', 'Scorecard'),
  panel('throughput', 'Orders per minute, last hour', '<div class="chart" id="throughput-chart"></div>'),
  panel(
    'queues',
    'Queue depths, last hour <small>(sampled by this API process)</small>',
    '<div class="chart" id="queues-chart"></div>',
  ),
  panel('carriers', 'Carriers'),
  panel('lockdowns', 'Regions in lockdown'),
  panel('dead-letters', 'Dead letters'),
  panel('alerts', 'Stock alerts'),
  panel('overdue', 'Overdue parcels'),
  '</main>',
  '</body></html>',
].join('\n');

/** `?token=` is the only query the page takes; assets take none. */
const PageQuery = Type.Object(
  { token: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })) },
  { additionalProperties: false },
);
const NoQuery = Type.Object({}, { additionalProperties: false });

function sendAsset(request: FastifyRequest, reply: FastifyReply, file: Asset) {
  // Revalidated each time (a deploy changes them), answered 304 while unchanged.
  reply.headers({ 'cache-control': 'no-cache', etag: file.etag, 'x-content-type-options': 'nosniff' });
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.code(200).type(file.type).send(file.body);
}

/**
 * The operators' page at GET /admin, behind the admin token with Bull Board's session: a bearer,
 * or `?token=` once, which sets the signed session cookie and redirects to /admin (so the token
 * leaves the address bar and the history). The page's fetches go to /v1/admin/*, which accept
 * the same session; it is put under Path=/v1/admin too, with the same value (and expiry).
 */
export async function registerOpsPage(app: FastifyInstance, adminToken: string) {
  const assets = Object.fromEntries(Object.entries(ASSETS).map(([name, load]) => [name, load()]));
  await app.register(async (scope) => {
    scope.addHook('onRequest', adminAuthenticator(adminToken, { allowCookie: true }));

    scope.get(
      '/admin',
      { schema: { hide: true, querystring: PageQuery } },
      async (request: FastifyRequest<{ Querystring: { token?: string } }>, reply) => {
        const secure = request.protocol === 'https';
        if (request.adminSession) {
          const value = request.adminSession;
          reply.header('set-cookie', adminSessionCookie(adminToken, { secure, path: '/v1/admin', value }));
        }
        if (request.query.token !== undefined)
          return reply.code(303).header('location', '/admin').header('cache-control', 'no-store').send();
        return reply.code(200).headers(PAGE_HEADERS).send(OPS_PAGE);
      },
    );

    for (const [name, file] of Object.entries(assets)) {
      scope.get(`/admin/assets/${name}`, { schema: { hide: true, querystring: NoQuery } }, (request, reply) =>
        sendAsset(request, reply, file),
      );
    }
  });
}
