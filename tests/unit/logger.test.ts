import { context, propagation, trace } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { describe, expect, it } from 'vitest';
import { createLogger, safeErrorText, serializeError } from '../../src/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(JSON.parse(line)) } };
}

describe('logger', () => {
  it('redacts customer contact data, addresses and credentials', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', stream);
    log.info(
      {
        order: {
          customer: { name: 'Li Wei', phone: '+8613800000000', email: 'li@example.com' },
          shippingAddress: { line1: '1 Century Avenue', city: 'Shanghai' },
        },
        to: '+8613800000000',
        req: { headers: { authorization: 'Bearer sk_secret' } },
        orderId: 'kept',
      },
      'message',
    );
    const text = JSON.stringify(lines);
    for (const secret of ['Li Wei', '+8613800000000', 'li@example.com', '1 Century Avenue', 'sk_secret']) {
      expect(text).not.toContain(secret);
    }
    expect(lines[0].orderId).toBe('kept');
    expect(text).toContain('[redacted]');
  });

  it('honours the level', () => {
    const { lines, stream } = capture();
    const log = createLogger('warn', stream);
    log.info('hidden');
    log.warn('shown');
    expect(lines.map((l) => l.msg)).toEqual(['shown']);
  });

  /** An error shaped as drizzle 0.45 throws it: message with SQL and params, the driver's error as cause. */
  function drizzleQueryError() {
    const params = ['Li Wei', '+8613800000000', 'li@example.com', '1 Century Avenue', 'trk_secret_token'];
    const driver = Object.assign(new Error('value "+8613800000000" is out of range for type integer'), {
      name: 'PostgresError',
      code: '22003',
      detail: 'Failing row contains (Li Wei, +8613800000000).',
      where: "unnamed portal parameter $2 = '+8613800000000'",
      query: 'insert into orders ...',
      params,
      parameters: params,
    });
    class DrizzleQueryError extends Error {
      constructor(
        readonly query: string,
        readonly params: unknown[],
        override readonly cause: Error,
      ) {
        super(`Failed query: ${query}\nparams: ${params.join(',')}`);
      }
    }
    return new DrizzleQueryError('insert into "orders" ("name", "phone") values ($1, $2)', params, driver);
  }

  it('serializes a DrizzleQueryError without its SQL, params or the values its cause quotes', () => {
    const { lines, stream } = capture();
    const log = createLogger('debug', stream);
    const error = drizzleQueryError();
    log.error({ err: error }, 'unhandled error');
    log.warn({ error }, 'also under "error"');
    log.warn({ err: error.message }, 'a message string');
    const text = JSON.stringify(lines);
    for (const secret of [
      'Li Wei',
      '+8613800000000',
      'li@example.com',
      '1 Century Avenue',
      'trk_secret_token',
      'insert into',
      'params:',
      'Failing row',
    ]) {
      expect(text).not.toContain(secret);
    }
    const err = lines[0].err as Record<string, unknown>;
    expect(err).toMatchObject({
      type: 'DrizzleQueryError',
      message: 'Failed query (SQL and parameters not logged)',
      cause: {
        name: 'PostgresError',
        code: '22003',
        message: 'value "[redacted]" is out of range for type integer',
      },
    });
    expect(Object.keys(err).sort()).toEqual(['cause', 'message', 'stack', 'type']);
    expect(Object.keys(err.cause as object).sort()).toEqual(['code', 'message', 'name']);
    expect(err.stack).toMatch(/^DrizzleQueryError: Failed query \(SQL and parameters not logged\)\n\s+at /);
    expect((lines[1].error as Record<string, unknown>).type).toBe('DrizzleQueryError');
    expect(lines[2].err).toBe('Failed query (SQL and parameters not logged)');
  });

  it('keeps the diagnostic fields and the whole cause chain as name, code and message', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
      address: '127.0.0.1',
      port: 5432,
    });
    const outer = new Error('outer', { cause: new Error('middle', { cause: refused }) });
    const out = serializeError(outer) as Record<string, unknown>;
    expect(out).toMatchObject({
      type: 'Error',
      message: 'outer',
      cause: { name: 'Error', message: 'middle', cause: { code: 'ECONNREFUSED', message: refused.message } },
    });
    expect(serializeError(refused)).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', port: 5432 });
  });

  it('strips the values PostgreSQL quotes from error text', () => {
    expect(safeErrorText('invalid input syntax for type uuid: "Li Wei"')).toBe(
      'invalid input syntax for type uuid: "[redacted]"',
    );
    expect(safeErrorText('Key (email)=(li@example.com) already exists.')).toBe(
      'Key (email)=([redacted]) already exists.',
    );
    expect(safeErrorText('invalid byte sequence for encoding "UTF8": 0x00')).toBe(
      'invalid byte sequence for encoding "UTF8": 0x00',
    );
    expect(safeErrorText('Failed query: select $1\nparams: +8613800000000')).toBe(
      'Failed query (SQL and parameters not logged)',
    );
  });

  it("adds the active span's traceId and spanId to each line, and nothing outside a span", () => {
    const { lines, stream } = capture();
    const log = createLogger('info', stream);
    log.info({ orderId: 'before' }, 'no tracer yet');
    const provider = new NodeTracerProvider(); // records spans, exports none
    provider.register();
    try {
      const span = trace.getTracer('test').startSpan('work');
      context.with(trace.setSpan(context.active(), span), () => log.info({ orderId: 'o-1' }, 'in a span'));
      span.end();
      log.info('after the span');
      const { traceId, spanId } = span.spanContext();
      expect(lines[0]).not.toHaveProperty('traceId');
      expect(lines[1]).toMatchObject({ traceId, spanId, orderId: 'o-1', msg: 'in a span' });
      expect(lines[2]).not.toHaveProperty('traceId');
    } finally {
      trace.disable();
      context.disable();
      propagation.disable();
    }
  });
});
