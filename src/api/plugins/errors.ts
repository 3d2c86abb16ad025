import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
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

/** A dependency (Redis, the database) that is not answering: the caller should come back. */
export function isUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string; name?: string };
  const code = e?.code ?? '';
  const message = e?.message ?? '';
  return (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'ENOTFOUND',
      'CONNECTION_CLOSED',
      'CONNECTION_ENDED',
      'CONNECT_TIMEOUT',
      'CONNECTION_DESTROYED',
      '57P01',
      '57P03',
      '53300',
    ].includes(code) ||
    /Connection is closed|Stream isn't writeable|enableOfflineQueue|PGlite is closed|MaxRetriesPerRequest|connect ECONNREFUSED/i.test(
      message,
    )
  );
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
    if (isUnavailable(error)) {
      request.log.warn({ err: error.message }, 'dependency unavailable');
      reply.header('retry-after', '5');
      return sendProblem(reply, {
        status: 503,
        code: 'unavailable',
        detail: 'A dependency of the service is not answering; retry shortly.',
      });
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
