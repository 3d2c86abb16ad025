/**
 * The one way Surgeline calls a partner (carriers, shop webhooks, SMS): redirects are never followed
 * (a 3xx is the answer, and counts as a failed call), every call has a deadline, and an answer body is
 * read only up to a cap, so a misbehaving partner can neither send us elsewhere nor fill our memory.
 */

/** Largest answer body we read; past it the stream is cancelled and the body counts as unreadable. */
export const MAX_ANSWER_BYTES = 64 * 1024;

export interface OutboundRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export type OutboundResult =
  /** The partner answered. `text` is null when the body could not be read whole (`unreadable` says why). */
  | {
      kind: 'answer';
      status: number;
      headers: Headers;
      text: string | null;
      unreadable?: 'too_large' | 'read_failed';
    }
  /** No answer by the deadline: the partner may still have acted on the call. */
  | { kind: 'timeout'; detail: string }
  /** No answer at all: refused connection, reset, DNS failure. */
  | { kind: 'connection'; detail: string };

function isTimeout(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

export async function outboundCall(url: string, request: OutboundRequest): Promise<OutboundResult> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(request.timeoutMs),
    });
  } catch (error) {
    if (isTimeout(error)) return { kind: 'timeout', detail: `no answer within ${request.timeoutMs} ms` };
    // undici reports 'fetch failed' and keeps the reason (ECONNREFUSED, ECONNRESET…) in `cause`.
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    return {
      kind: 'connection',
      detail: `connection failed: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
    };
  }
  const { text, unreadable } = await readCapped(response);
  return { kind: 'answer', status: response.status, headers: response.headers, text, unreadable };
}

async function readCapped(
  response: Response,
): Promise<{ text: string | null; unreadable?: 'too_large' | 'read_failed' }> {
  if (!response.body) return { text: '' };
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_ANSWER_BYTES) {
    await response.body.cancel().catch(() => undefined);
    return { text: null, unreadable: 'too_large' };
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_ANSWER_BYTES) {
        await reader.cancel().catch(() => undefined);
        return { text: null, unreadable: 'too_large' };
      }
      chunks.push(value);
    }
  } catch {
    // A reset or the deadline in the middle of the body: the status stands, the body does not.
    return { text: null, unreadable: 'read_failed' };
  }
  return { text: Buffer.concat(chunks).toString('utf8') };
}
