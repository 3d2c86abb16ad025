import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type RouteOptions,
} from 'fastify';
import secureJson from 'secure-json-parse';
import type { Context } from '../context.js';
import { AppError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { adminAuthenticator, shopAuthenticator } from './plugins/auth.js';
import { allCarriers } from '../db/carriers.js';
import { createIntakeBatcher, type IntakeBatcher } from '../steps/intake-batch.js';
import { registerBoard } from './plugins/board.js';
import { registerOpsPage } from './pages/ops.js';
import { createQueueHistory } from '../steps/queue-history.js';
import { registerDocs } from './plugins/docs.js';
import {
  clientErrorHandler,
  frameworkErrorHandler,
  isUnavailable,
  registerErrorHandling,
} from './plugins/errors.js';
import { registerLoadShedding } from './plugins/load-shedding.js';
import { registerShopRateLimit } from './plugins/rate-limit.js';
import { registerTracing } from './plugins/tracing.js';
import { compileTextual, createValidatorCompiler, type StrictValidator } from './plugins/validation.js';
import { problems } from './responses.js';
import { adminRoutes } from './routes/admin/index.js';
import { carrierEventRoutes } from './routes/carrier-events.js';
import { orderRoutes } from './routes/orders.js';
import { serviceRoutes } from './routes/service.js';
import { trackRoutes } from './routes/track.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Group-commit intake of this process (POST /v1/orders and the batch route). */
    intakeBatcher: IntakeBatcher;
  }
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
  /** A server span per request (OpenTelemetry SDK started); off: no hook at all. */
  tracing?: boolean;
}

const ONE_MIB = 1024 * 1024;
/** What secure-json-parse throws for a prototype-poisoning key. */
const POISONED = /forbidden prototype property/;

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

/**
 * Admin routes: the token, or the operations page's session cookie; a route that changes anything
 * answers 403 same_origin_required to a cookie without the X-Surgeline-Admin header.
 */
function withAdminSecurity(route: RouteOptions) {
  const schema = route.schema as { security?: unknown; response?: Record<string, unknown> } | undefined;
  if (!schema) return;
  schema.security = [{ adminToken: [] }, { adminSession: [] }];
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (schema.response && methods.some((m) => m !== 'GET' && m !== 'HEAD'))
    Object.assign(schema.response, problems(403));
}

export async function buildApp({
  ctx,
  metrics,
  surface = 'full',
  tracing = false,
}: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    // Per-request lines would drown a surge in noise; metrics count requests, errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ONE_MIB,
    // Closing answers 503 problem+json from a hook (registerErrorHandling), not Fastify's plain JSON.
    return503OnClosing: false,
    forceCloseConnections: true,
    // Above every id's maxLength, so the schema (→ 404) decides; longer still → 404 as well.
    routerOptions: { maxParamLength: 256 },
    // What Fastify would answer by itself (bad URL encoding, over-long parameter) is problem+json.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  });
  if (tracing) registerTracing(app);
  app.setValidatorCompiler(createValidatorCompiler());
  // Path parameters are checked before any route's own preValidation (a carrier lookup, say):
  // an id its schema refuses (U+0000, which no database can compare; too long) names nothing → 404.
  const paramChecks = new WeakMap<object, StrictValidator>();
  app.addHook('preValidation', async (request) => {
    const schema = request.routeOptions.schema?.params as object | undefined;
    if (!schema) return;
    let check = paramChecks.get(schema);
    if (!check) paramChecks.set(schema, (check = compileTextual(schema)));
    if (!check({ ...(request.params as object) }))
      throw new AppError(404, 'not_found', 'Nothing here has that id.');
  });

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
    let parsed: unknown;
    try {
      parsed = secureJson.parse(text, null, { protoAction: 'error', constructorAction: 'error' });
    } catch (error) {
      // Valid JSON holding a `__proto__` or `constructor.prototype` key, which could poison objects built from it.
      if (POISONED.test((error as Error).message)) {
        return done(
          new AppError(400, 'validation_failed', 'The request is not valid; see errors.', {
            errors: [{ path: 'body', message: 'must not hold a "__proto__" or "constructor.prototype" key' }],
          }),
          undefined,
        );
      }
      return done(new SyntaxError('malformed JSON'), undefined);
    }
    done(null, parsed);
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  if (surface === 'full') await registerDocs(app);
  await app.register(serviceRoutes, { ctx, metrics });
  if (surface === 'service') return app;

  const intakeBatcher = createIntakeBatcher(ctx, {
    maxWaitMs: ctx.config.intakeBatch.ms,
    maxSize: ctx.config.intakeBatch.size,
    // A batch the database refused is committed again order by order; one it could not reach fails (503).
    retryAlone: (error) => !isUnavailable(error),
    onBatch: (orders) => metrics.intakeBatchOrders.observe(orders),
  });
  app.decorate('intakeBatcher', intakeBatcher);
  // Requests are answered by then; a batch still committing finishes before the database closes.
  app.addHook('onClose', async () => {
    await intakeBatcher.drain();
  });

  await app.register(trackRoutes, { ctx });
  await app.register(carrierEventRoutes, { ctx });
  await app.register(async (shopScope) => {
    shopScope.addHook('onRoute', withSecurity('shopKey'));
    shopScope.addHook('onRequest', shopAuthenticator(ctx.db));
    await registerShopRateLimit(shopScope, ctx.coord, ctx.config.queuePrefix);
    registerLoadShedding(shopScope, ctx, (priority) => metrics.ordersShed.inc({ priority }));
    await shopScope.register(orderRoutes, { ctx, intakeBatcher });
  });
  // The queue depths the operations page charts: read on a timer while this API process serves.
  const queueHistory = createQueueHistory(ctx);
  app.addHook('onReady', async () => queueHistory.start());
  app.addHook('preClose', async () => queueHistory.stop());
  await app.register(async (adminScope) => {
    adminScope.addHook('onRoute', withAdminSecurity);
    // The session cookie too, for the operations page's fetches (a POST riding on it needs the same-origin header).
    adminScope.addHook('onRequest', adminAuthenticator(ctx.config.adminToken, { sessionApi: true }));
    await adminScope.register(adminRoutes, { ctx, queueHistory });
  });
  await registerBoard(app, ctx.queues, ctx.config.adminToken, async () =>
    (await allCarriers(ctx.db)).map((c) => c.id),
  );
  await registerOpsPage(app, ctx.config.adminToken);
  return app;
}
