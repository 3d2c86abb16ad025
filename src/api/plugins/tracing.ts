import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TRACER_NAME } from '../../telemetry.js';

/**
 * One server span per request, named and labelled by its route pattern (`POST /v1/orders`), never
 * by the path or query: a path can hold a tracking token. Everything the request does — hooks,
 * handler, the jobs it enqueues, its log lines — runs in the span's context. A caller's W3C
 * `traceparent` is continued. Registered first, so every later hook runs inside the span.
 */
export function registerTracing(app: FastifyInstance): void {
  const tracer = trace.getTracer(TRACER_NAME);
  const spans = new WeakMap<FastifyRequest, Span>();

  app.addHook('onRequest', (request, _reply, done) => {
    const parent = propagation.extract(context.active(), request.headers);
    const span = tracer.startSpan(
      request.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method } },
      parent,
    );
    spans.set(request, span);
    // The rest of the request runs in the span's context: Fastify continues after the body
    // arrives in an AsyncResource made where parsing started (tests/integration/tracing.test.ts
    // sends a body in two parts to check), so no binding of the raw request's events is needed.
    context.with(trace.setSpan(parent, span), done);
  });

  const end = (request: FastifyRequest, status?: number) => {
    const span = spans.get(request);
    if (!span) return;
    spans.delete(request);
    const route = request.routeOptions.url;
    if (route) {
      span.updateName(`${request.method} ${route}`);
      span.setAttribute('http.route', route);
    }
    if (status !== undefined) {
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    } else span.setStatus({ code: SpanStatusCode.ERROR, message: 'request aborted' });
    span.end();
  };
  app.addHook('onResponse', (request, reply, done) => {
    end(request, reply.statusCode);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    end(request);
    done();
  });
}
