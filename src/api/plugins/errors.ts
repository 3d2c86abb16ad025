import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Duplex } from 'node:stream';
import { AppError } from '../../errors.js';

export interface ProblemFields {
  status: number;
  code: string;
  detail: string;
  errors?: { path: string; message: string }[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** RFC 9457 problem object; also what a batch result carries as its `error`. */
export function problem(p: ProblemFields) {
  return {
    type: `urn:surgeline:problem:${p.code}`,
    title: TITLES[p.status] ?? 'Error',
    status: p.status,
    detail: p.detail,
    code: p.code,
    ...(p.errors ? { errors: p.errors } : {}),
  };
}

export function sendProblem(reply: FastifyReply, p: ProblemFields) {
  return reply.code(p.status).type('application/problem+json').send(problem(p));
}

const PART_NAMES: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'headers',
};

interface AjvIssue {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

/** Ajv issues as `{ path, message }`, the path like `body/items/0/quantity`. */
export function validationErrors(part: string, issues: AjvIssue[]) {
  return issues.map((issue) => {
    let path = issue.instancePath.replace(/^\//, '');
    if (issue.keyword === 'required') path = [path, issue.params.missingProperty].filter(Boolean).join('/');
    if (issue.keyword === 'additionalProperties') {
      path = [path, issue.params.additionalProperty].filter(Boolean).join('/');
      return { path: `${part}/${path}`, message: 'is not a field of this request' };
    }
    const allowed =
      issue.keyword === 'enum' ? `: ${(issue.params.allowedValues as unknown[]).join(', ')}` : '';
    return { path: path ? `${part}/${path}` : part, message: `${issue.message ?? 'is invalid'}${allowed}` };
  });
}

/** Node socket and postgres.js connection codes: the other end is not there (or went away). */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'CONNECTION_DESTROYED',
]);

/**
 * SQLSTATEs of a server that cannot serve us now: class 08 (connection exception), 57P01–57P05
 * (admin/crash shutdown, cannot connect now, idle session timeout…), 53300 (too many connections).
 */
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[0-9]|53300)$/;

/** Messages of clients that have no code: PGlite, ioredis, BullMQ. */
const UNAVAILABLE_MESSAGE =
  /PGlite is closed|PGlite is not ready|Connection is closed|Connection terminated|Stream isn't writeable|enableOfflineQueue|MaxRetriesPerRequest|connect ECONNREFUSED|Client has encountered a connection error/i;

/**
 * Every error a failure is made of: the error, its `.cause` chain (drizzle wraps the driver's
 * error in a DrizzleQueryError) and the members of an AggregateError (a connect to several addresses).
 */
export function errorChain(error: unknown): unknown[] {
  const seen = new Set<unknown>();
  const pending = [error];
  while (pending.length > 0 && seen.size < 32) {
    const current = pending.shift();
    if (current === null || current === undefined || seen.has(current)) continue;
    seen.add(current);
    if (typeof current !== 'object') continue;
    const { cause } = current as { cause?: unknown };
    if (cause !== undefined) pending.push(cause);
    if (current instanceof AggregateError) pending.push(...current.errors);
  }
  return [...seen];
}

/** The error of the chain that says the dependency is away, if one does. */
export function unavailableCause(error: unknown): { code?: string; message?: string } | undefined {
  for (const link of errorChain(error)) {
    if (typeof link !== 'object' || link === null) continue;
    const { code, message } = link as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && code !== '') {
      if (CONNECTION_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))
        return link as { code: string; message?: string };
      // An error with a code is decided by it: a server's message may quote the query's values.
      continue;
    }
    // Only a client's own code-less errors are read by message, never a DrizzleQueryError's,
    // whose message holds the query's parameters, i.e. anyone's text.
    if (
      typeof message === 'string' &&
      !message.startsWith('Failed query:') &&
      UNAVAILABLE_MESSAGE.test(message)
    )
      return link as { message: string };
  }
  return undefined;
}

/**
 * A dependency (Redis, the database) that is not answering: the caller should come back. Reads
 * the whole cause chain, so a driver error wrapped by drizzle counts; for workers too.
 */
export function isUnavailable(error: unknown): boolean {
  return unavailableCause(error) !== undefined;
}

/** Answers 503 with Retry-After for a dependency that is away. */
export function sendUnavailable(reply: FastifyReply) {
  reply.header('retry-after', '5');
  return sendProblem(reply, {
    status: 503,
    code: 'unavailable',
    detail: 'A dependency of the service is not answering; retry shortly.',
  });
}

const FASTIFY_CODES: Record<string, ProblemFields> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    code: 'payload_too_large',
    detail: 'The request body is larger than 1 MiB.',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'unsupported_media_type',
    detail: 'Send the request body as application/json.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'malformed_json', detail: 'The request body is empty.' },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    code: 'malformed_json',
    detail: 'The request body is not valid JSON.',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'bad_request',
    detail: 'Content-Length does not match the body.',
  },
};

const NO_SUCH_ID: ProblemFields = { status: 404, code: 'not_found', detail: 'Nothing here has that id.' };

/**
 * Fastify's `frameworkErrors`: what the router answers by itself. A path it cannot decode
 * (`%E0%A4%A`) or a parameter over `maxParamLength` names nothing, so 404 like an unknown id.
 */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply) {
  if (error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH')
    return sendProblem(reply, NO_SUCH_ID);
  return sendProblem(reply, {
    status: 500,
    code: 'internal_error',
    detail: 'Something went wrong on our side.',
  });
}

const CLIENT_ERRORS: Record<string, ProblemFields> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request_timeout',
    detail: 'The request took too long to arrive.',
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers_too_large',
    detail: 'The request headers are too large.',
  },
};

/**
 * Node's `clientError` (a request the HTTP parser refuses, e.g. a NUL in a header): the same
 * problem+json as every other answer, written on the socket since there is no request object.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Duplex) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const fields = CLIENT_ERRORS[error.code ?? ''] ?? {
    status: 400,
    code: 'bad_request',
    detail: 'The request is not valid HTTP.',
  };
  if (socket.writable) {
    const body = JSON.stringify(problem(fields));
    socket.write(
      `HTTP/1.1 ${fields.status} ${TITLES[fields.status] ?? 'Error'}\r\n` +
        `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export function registerErrorHandling(
  app: FastifyInstance,
  knownRoutes: () => { pattern: RegExp; methods: Set<string> }[],
) {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof AppError) {
      if (error.headers) reply.headers(error.headers);
      return sendProblem(reply, {
        status: error.status,
        code: error.code,
        detail: error.message,
        errors: error.errors,
      });
    }
    if (error.validation) {
      // Every path parameter is an id: one that cannot be valid names nothing, so it is 404.
      if (error.validationContext === 'params') return sendProblem(reply, NO_SUCH_ID);
      const part = PART_NAMES[error.validationContext ?? 'body'] ?? 'body';
      return sendProblem(reply, {
        status: 400,
        code: 'validation_failed',
        detail: 'The request is not valid; see errors.',
        errors: validationErrors(part, error.validation as AjvIssue[]),
      });
    }
    const known = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (known) return sendProblem(reply, known);
    if (error instanceof SyntaxError) {
      return sendProblem(reply, {
        status: 400,
        code: 'malformed_json',
        detail: 'The request body is not valid JSON.',
      });
    }
    const away = unavailableCause(error);
    if (away) {
      request.log.warn(
        { err: [away.code, away.message].filter(Boolean).join(': ') },
        'dependency unavailable',
      );
      return sendUnavailable(reply);
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return sendProblem(reply, { status: error.statusCode, code: 'bad_request', detail: error.message });
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(reply, {
      status: 500,
      code: 'internal_error',
      detail: 'Something went wrong on our side.',
    });
  });

  // A request arriving while the server closes: 503 problem+json (the app is built with
  // return503OnClosing: false, since Fastify's own 503 is a plain JSON body).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    reply.header('retry-after', '5');
    return sendProblem(reply, {
      status: 503,
      code: 'unavailable',
      detail: 'The server is shutting down; retry shortly.',
    });
  });

  // An unknown path is 404; a known path with another method is 405 with Allow.
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const allowed = new Set<string>();
    for (const route of knownRoutes())
      if (route.pattern.test(path)) route.methods.forEach((m) => allowed.add(m));
    if (allowed.size > 0 && !allowed.has(request.method)) {
      reply.header('allow', [...allowed].sort().join(', '));
      return sendProblem(reply, {
        status: 405,
        code: 'method_not_allowed',
        detail: `${request.method} is not allowed here; use ${[...allowed].sort().join(', ')}.`,
      });
    }
    return sendProblem(reply, {
      status: 404,
      code: 'not_found',
      detail: `No route ${request.method} ${path}.`,
    });
  });
}

/**
 * The problem object an error answers with, wherever it is answered (the error handler, a batch
 * entry, Bull Board's scope): our AppError as it says, an unavailable dependency as 503, anything
 * else as a 500 that says nothing of its cause.
 */
export function problemOf(error: unknown) {
  if (error instanceof AppError) {
    return problem({ status: error.status, code: error.code, detail: error.message, errors: error.errors });
  }
  if (isUnavailable(error)) {
    return problem({
      status: 503,
      code: 'unavailable',
      detail: 'A dependency of the service is not answering; retry shortly.',
    });
  }
  return problem({ status: 500, code: 'internal_error', detail: 'Something went wrong on our side.' });
}
