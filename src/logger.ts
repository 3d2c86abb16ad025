import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino, { type DestinationStream, type Logger } from 'pino';

/** Customer contact data and addresses never reach the logs. */
const REDACT = [
  'customer.phone',
  'customer.email',
  'customer.name',
  'shippingAddress',
  '*.customer.phone',
  '*.customer.email',
  '*.customer.name',
  '*.shippingAddress',
  'to',
  'req.headers.authorization',
  'req.headers["x-signature"]',
];

/**
 * Error text without the values it may quote: the SQL and "params: …" drizzle puts in a
 * DrizzleQueryError's message ("Failed query: <sql>\nparams: <values>"), and the values
 * PostgreSQL quotes in its own messages (`invalid input syntax for type integer: "…"`,
 * `value "…" is out of range`, `Key (email)=(…)`).
 */
export function safeErrorText(text: string): string {
  let safe = text;
  const failed = safe.indexOf('Failed query:');
  if (failed !== -1) safe = `${safe.slice(0, failed)}Failed query (SQL and parameters not logged)`;
  const params = safe.search(/\n\s*params:/);
  if (params !== -1) safe = safe.slice(0, params);
  return safe
    .replace(/(: |value |token )"(?:[^"\\]|\\.)*"/g, '$1"[redacted]"')
    .replace(/\)=\((?:[^)(]|\([^)]*\))*\)/g, ')=([redacted])');
}

/** Fields of an error that describe the failure, never the data it was about. */
const SAFE_FIELDS = [
  'code',
  'errno',
  'syscall',
  'address',
  'port',
  'statusCode',
  'status',
  'severity',
  'routine',
  'validationContext',
];

const MAX_CAUSES = 8;

/** One link of a `.cause` chain: name, code and message, nothing else. */
function causeOf(value: unknown, depth: number, seen: Set<unknown>): Record<string, unknown> {
  if (value === null || typeof value !== 'object') return { message: safeErrorText(String(value)) };
  seen.add(value);
  const e = value as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  const out: Record<string, unknown> = {
    name: typeof e.name === 'string' && e.name !== 'Error' ? e.name : (ctor ?? 'Error'),
  };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.message === 'string') out.message = safeErrorText(e.message);
  if (e.cause !== undefined && e.cause !== null && !seen.has(e.cause) && depth < MAX_CAUSES)
    out.cause = causeOf(e.cause, depth + 1, seen);
  return out;
}

/** The stack's frames only: its first lines repeat the message, which may hold any data. */
function framesOf(stack: string, message: unknown): string[] {
  const at = typeof message === 'string' && message !== '' ? stack.indexOf(message) : -1;
  const rest = at === -1 ? stack : stack.slice(at + (message as string).length);
  return rest.split('\n').filter((line) => /^\s+at /.test(line));
}

/**
 * The `err` / `error` serializer: an Error (or a message string) without query parameters.
 * Keeps type, message and stack (both made safe) and a few diagnostic fields; drops every
 * other property (`params`, `query`, `parameters`, `detail`, `where`, …); the `.cause` chain
 * and an AggregateError's `errors` are kept as name, code and message only.
 */
export function serializeError(value: unknown): unknown {
  if (typeof value === 'string') return safeErrorText(value);
  if (value === null || typeof value !== 'object') return value;
  const error = value as Record<string, unknown>;
  const type = (value as { constructor?: { name?: string } }).constructor?.name ?? 'Error';
  const message = typeof error.message === 'string' ? safeErrorText(error.message) : undefined;
  const out: Record<string, unknown> = { type };
  if (message !== undefined) out.message = message;
  for (const field of SAFE_FIELDS) {
    const v = error[field];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[field] = v;
  }
  if (typeof error.stack === 'string')
    out.stack = [`${type}: ${message ?? ''}`, ...framesOf(error.stack, error.message)].join('\n');
  const seen = new Set<unknown>([value]);
  if (error.cause !== undefined && error.cause !== null) out.cause = causeOf(error.cause, 1, seen);
  if (Array.isArray(error.errors) && error.errors.every((e) => e instanceof Error))
    out.errors = error.errors.slice(0, MAX_CAUSES).map((e) => causeOf(e, 1, seen));
  return out;
}

/**
 * The active span's ids on every line (a request's, or the job's: BullMQ runs a processor in its
 * span's context), so one order's lines are found by its trace id. No span (tracing off): nothing.
 */
function traceIds(): Record<string, string> {
  const span = trace.getActiveSpan()?.spanContext();
  // A new object each time: pino merges the line's own fields into it.
  return span && isSpanContextValid(span) ? { traceId: span.traceId, spanId: span.spanId } : {};
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    mixin: traceIds,
    redact: { paths: REDACT, censor: '[redacted]' },
    serializers: { err: serializeError, error: serializeError },
    base: { service: 'surgeline' },
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
