import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type RouteOptions,
} from 'fastify';
import type { Context } from '../context.js';
import type { Metrics } from '../metrics.js';
import { adminAuthenticator, shopAuthenticator } from './plugins/auth.js';
import { registerBoard } from './plugins/board.js';
import { registerDocs } from './plugins/docs.js';
import { registerErrorHandling } from './plugins/errors.js';
import { registerShopRateLimit } from './plugins/rate-limit.js';
import { createValidatorCompiler } from './plugins/validation.js';
import { adminRoutes } from './routes/admin.js';
import { carrierEventRoutes } from './routes/carrier-events.js';
import { orderRoutes } from './routes/orders.js';
import { serviceRoutes } from './routes/service.js';
import { trackRoutes } from './routes/track.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received, for signature checks. */
    rawBody?: string;
  }
}

export interface AppOptions {
  ctx: Context;
  metrics: Metrics;
  /** `full`: the whole API; `service`: only /healthz, /readyz and /metrics (a worker process). */
  surface?: 'full' | 'service';
}

const ONE_MIB = 1024 * 1024;

function routePattern(url: string): RegExp {
  const escaped = url
    .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
    .replace(/:[A-Za-z0-9_]+/g, '[^/]+')
    .replace(/\*/g, '.*');
  return new RegExp(`^${escaped}/?$`);
}

function withSecurity(scheme: 'shopKey' | 'adminToken') {
  return (route: RouteOptions) => {
    if (route.schema) (route.schema as Record<string, unknown>).security = [{ [scheme]: [] }];
  };
}

export async function buildApp({ ctx, metrics, surface = 'full' }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    // Per-request lines would drown a surge in noise; metrics count requests, errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ONE_MIB,
    return503OnClosing: true,
    forceCloseConnections: true,
  });
  app.setValidatorCompiler(createValidatorCompiler());

  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ pattern: routePattern(route.url), methods: new Set(methods) });
  });
  registerErrorHandling(app, () => routes);

  // JSON bodies are parsed here so the raw text stays available for HMAC signatures.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    request.rawBody = text;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const error = new SyntaxError('malformed JSON');
      done(error, undefined);
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  if (surface === 'full') await registerDocs(app);
  await app.register(serviceRoutes, { ctx, metrics });
  if (surface === 'service') return app;

  await app.register(trackRoutes, { ctx });
  await app.register(carrierEventRoutes, { ctx });
  await app.register(async (shopScope) => {
    shopScope.addHook('onRoute', withSecurity('shopKey'));
    shopScope.addHook('onRequest', shopAuthenticator(ctx.db));
    await registerShopRateLimit(shopScope, ctx.redis, ctx.config.queuePrefix);
    await shopScope.register(orderRoutes, { ctx });
  });
  await app.register(async (adminScope) => {
    adminScope.addHook('onRoute', withSecurity('adminToken'));
    adminScope.addHook('onRequest', adminAuthenticator(ctx.config.adminToken));
    await adminScope.register(adminRoutes, { ctx });
  });
  await registerBoard(app, ctx.queues, ctx.config.adminToken);
  return app;
}
