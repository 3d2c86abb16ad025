import { context, propagation, trace, type Context as OtelContext } from '@opentelemetry/api';
import type { Span, Telemetry } from 'bullmq';
import { BullMQOtel } from 'bullmq-otel';
import type { Config } from './config.js';
import { safeErrorText } from './logger.js';

/** Tracer name of the HTTP spans and of BullMQ's job spans. */
export const TRACER_NAME = 'surgeline';

export interface Tracing {
  /** OTEL_EXPORTER_OTLP_ENDPOINT was set: an SDK exports spans over OTLP/HTTP. */
  enabled: boolean;
  /** BullMQ's `telemetry` option for every Queue and Worker; undefined when tracing is off. */
  telemetry?: Telemetry<OtelContext>;
  /** Exports the spans ended so far (tests, shutdown). */
  flush(): Promise<void>;
  /** Flushes, stops the SDK and unsets the global tracer, so another start in this process works. */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { enabled: false, flush: async () => {}, shutdown: async () => {} };

/**
 * Starts the OpenTelemetry SDK when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing is
 * loaded, and @opentelemetry/api stays its no-op self (the logger's mixin and the HTTP hook cost
 * a function call). The SDK is imported on demand for the same reason.
 */
export async function startTracing(config: Config): Promise<Tracing> {
  const { endpoint, serviceName } = config.tracing;
  if (!endpoint) return OFF;
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    // OTLP/HTTP with JSON bodies; the exporter reads OTEL_EXPORTER_OTLP_HEADERS & co. itself.
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(endpoint) }))],
  });
  // Global tracer provider, AsyncLocalStorage context manager and W3C trace-context propagator.
  provider.register();
  return {
    enabled: true,
    telemetry: jobTelemetry(),
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown().catch(() => undefined);
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** The signal path the spec appends to the base OTEL_EXPORTER_OTLP_ENDPOINT. */
function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * BullMQ operations kept as spans: adding a job and processing it, which is what links an order's
 * jobs into one trace. The rest (stalled checks, pauses, closes, …) would be root spans every few
 * seconds per worker with nothing to say about an order.
 */
const TRACED = new Set(['add', 'addBulk', 'process']);

/**
 * bullmq-otel's telemetry, with two changes: only TRACED operations make spans, and error
 * messages BullMQ records on a span (a failed job's reason, an exception) are made safe like
 * the logs' (they may quote a query's parameters: customer data).
 */
export function jobTelemetry(): Telemetry<OtelContext> {
  const otel = new BullMQOtel({ tracerName: TRACER_NAME });
  const inner = otel.tracer;
  otel.tracer = {
    startSpan(name, options, parent) {
      if (!TRACED.has(name.split(' ')[0])) return untraced;
      return safeSpan(inner.startSpan(name, options, parent));
    },
  } as typeof otel.tracer;
  return otel;
}

const safeValue = <T>(value: T): T => (typeof value === 'string' ? (safeErrorText(value) as T) : value);

function safeSpan(span: Span<OtelContext>): Span<OtelContext> {
  return {
    setSpanOnContext: (ctx) => span.setSpanOnContext(ctx),
    setAttribute: (key, value) => span.setAttribute(key, value),
    setAttributes: (attributes) => span.setAttributes(attributes),
    addEvent: (name, attributes) =>
      span.addEvent(
        name,
        attributes && Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, safeValue(v)])),
      ),
    recordException: (exception, time) =>
      span.recordException(
        safeErrorText(typeof exception === 'string' ? exception : (exception.message ?? '')),
        time,
      ),
    end: () => span.end(),
  } as Span<OtelContext>;
}

/** A span that records nothing and leaves the context as it was. */
const untraced: Span<OtelContext> = {
  setSpanOnContext: (ctx) => ctx,
  setAttribute: () => {},
  setAttributes: () => {},
  addEvent: () => {},
  recordException: () => {},
  end: () => {},
};

/** The active context, to carry an order's trace past a batch (see Queues.addBulk). */
export const activeContext = (): OtelContext => context.active();
