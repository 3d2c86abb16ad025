import { expect } from 'vitest';

/** An answer as read off the wire: what `answerOf` makes of a fetch Response. */
export interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** A LightMyRequest response (`app.inject`), or anything shaped like one. */
export interface InjectedAnswer {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

/** An RFC 9457 problem as the API answers it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { path: string; message: string }[];
  [field: string]: unknown;
}

/** Reads a fetch Response (its body once) into the shape expectProblem checks. */
export async function answerOf(response: Response): Promise<Answer> {
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    text: await response.text(),
  };
}

function normalise(answer: Answer | InjectedAnswer): Answer {
  if ('statusCode' in answer) {
    return {
      status: answer.statusCode,
      contentType: String(answer.headers['content-type'] ?? ''),
      text: answer.body,
    };
  }
  return answer;
}

/**
 * What leaks look like in an error body: a stack frame (`at /path…`, `file.ts:12`), a `stack`
 * field, a module path, or SQL and the parameters drizzle puts after it.
 */
const LEAKS: [string, RegExp][] = [
  ['a stack frame', /\bat (?:\S+ \()?\/|\n\s+at /],
  ['a source position', /\.[cm]?[tj]s:\d+/],
  ['a source file', /\.ts:/],
  ['a stack field', /"stack"/],
  ['a module path', /node_modules/],
  ['SQL', /\bselect\s+[\w"*]|\binsert\s+into\b|\bupdate\s+"?\w+"?\s+set\b|\bdelete\s+from\b/i],
  ['query parameters', /\bparams:/],
];

/**
 * Checks an error answer: its status, `application/problem+json`, the RFC 9457 fields (`type`,
 * `title`, `status`, `detail`, `code`, and `code` equal to `code` when given), and that the body
 * leaks no stack trace or SQL. Returns the problem for further checks.
 */
export function expectProblem(response: Answer | InjectedAnswer, status: number, code?: string): Problem {
  const answer = normalise(response);
  expect(answer.status, answer.text).toBe(status);
  expect(answer.contentType).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(answer.text) as Problem;
  expect(body).toMatchObject({ status });
  for (const field of ['type', 'title', 'detail', 'code'] as const) {
    expect(typeof body[field], `${field} in ${answer.text}`).toBe('string');
  }
  if (code !== undefined) expect(body.code).toBe(code);
  for (const [what, pattern] of LEAKS) {
    expect(pattern.test(answer.text), `the body holds ${what}: ${answer.text}`).toBe(false);
  }
  return body;
}
