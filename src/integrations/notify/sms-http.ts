import { outboundCall, type OutboundResult } from '../http.js';
import {
  PermanentSendError,
  RetryLaterError,
  type CustomerMessage,
  type NotificationProvider,
} from './types.js';

/** The longest Retry-After we wait out in one go; a provider asking for more is asked again then. */
export const MAX_SMS_RETRY_AFTER_MS = 5 * 60_000;
/** A 429 without a readable Retry-After waits this long. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

/** Retry-After as seconds or an HTTP date, in ms, within [0, MAX_SMS_RETRY_AFTER_MS]; undefined if unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  const ms = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), MAX_SMS_RETRY_AFTER_MS);
}

export type SmsOutcome =
  | { kind: 'sent' }
  | { kind: 'retry_after'; delayMs: number; httpStatus: number }
  | { kind: 'transient'; detail: string }
  | { kind: 'permanent'; httpStatus: number };

/**
 * What an SMS provider's answer means (contract, Customer messages): 2xx sent; 429 wait for its
 * Retry-After; 5xx, a 3xx (never followed), a timeout or no connection are retried with backoff;
 * any other 4xx is given up.
 */
export function classifySmsAnswer(result: OutboundResult, now = Date.now()): SmsOutcome {
  if (result.kind !== 'answer') return { kind: 'transient', detail: result.detail };
  const { status } = result;
  if (status >= 200 && status < 300) return { kind: 'sent' };
  if (status === 429) {
    const delayMs = parseRetryAfter(result.headers.get('retry-after'), now) ?? DEFAULT_RETRY_AFTER_MS;
    return { kind: 'retry_after', delayMs, httpStatus: status };
  }
  if (status >= 400 && status < 500) return { kind: 'permanent', httpStatus: status };
  return { kind: 'transient', detail: `SMS provider answered HTTP ${status}` };
}

/**
 * The contract's HTTP SMS protocol: `POST {url}` with `Authorization: Bearer {token}`, the
 * message's `Idempotency-Key`, body `{ "to", "text" }`, over the outbound helper (no redirects,
 * bounded answer bodies, a deadline). Errors name the HTTP status, never the phone or the text.
 */
export function httpSmsProvider(options: {
  url: string;
  token?: string;
  timeoutMs: number;
}): NotificationProvider {
  return {
    name: 'sms-http',
    async send(message: CustomerMessage) {
      const result = await outboundCall(options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': message.idempotencyKey,
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: JSON.stringify({ to: message.to, text: message.text }),
        timeoutMs: options.timeoutMs,
      });
      const outcome = classifySmsAnswer(result);
      switch (outcome.kind) {
        case 'sent':
          return;
        case 'retry_after':
          throw new RetryLaterError(
            `SMS provider answered HTTP 429 (retry after ${outcome.delayMs} ms)`,
            outcome.delayMs,
          );
        case 'permanent':
          throw new PermanentSendError(`SMS provider refused the message: HTTP ${outcome.httpStatus}`, {
            httpStatus: outcome.httpStatus,
          });
        case 'transient':
          throw new Error(outcome.detail);
      }
    },
  };
}
