import type { Logger } from '../../logger.js';
import { MAX_ANSWER_BYTES, outboundCall } from '../http.js';
import type {
  BookingOutcome,
  BookingRequest,
  CancelOutcome,
  CarrierAdapter,
  CarrierEndpoint,
} from './types.js';

const MAX_RETRY_AFTER_MS = 10_000;

function headers(carrier: CarrierEndpoint, extra: Record<string, string> = {}): Record<string, string> {
  return { ...(carrier.apiKey ? { authorization: `Bearer ${carrier.apiKey}` } : {}), ...extra };
}

function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.min(Math.max(seconds, 0) * 1000, MAX_RETRY_AFTER_MS);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.min(Math.max(date - Date.now(), 0), MAX_RETRY_AFTER_MS);
}

/** The trackingNumber of a 2xx answer, or why it can't be trusted. */
function parseBooking(
  text: string | null,
  unreadable: string | undefined,
): { trackingNumber: string; estimatedDeliveryAt: string | null } | string {
  if (text === null) {
    return unreadable === 'too_large' ? `body over ${MAX_ANSWER_BYTES} bytes` : 'body could not be read';
  }
  let body: { trackingNumber?: unknown; estimatedDeliveryAt?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    return 'body is not JSON';
  }
  if (typeof body?.trackingNumber !== 'string' || body.trackingNumber === '') return 'no trackingNumber';
  const eta = typeof body.estimatedDeliveryAt === 'string' ? body.estimatedDeliveryAt : null;
  return { trackingNumber: body.trackingNumber, estimatedDeliveryAt: eta };
}

/** The contract's carrier protocol: POST /shipments to book, DELETE /shipments/{id} to cancel. */
export function httpCarrier(timeoutMs: number, log?: Logger): CarrierAdapter {
  return {
    async book(carrier: CarrierEndpoint, request: BookingRequest): Promise<BookingOutcome> {
      const result = await outboundCall(`${carrier.baseUrl}/shipments`, {
        method: 'POST',
        headers: headers(carrier, {
          'content-type': 'application/json',
          'idempotency-key': request.reference,
        }),
        body: JSON.stringify(request),
        timeoutMs,
      });
      if (result.kind === 'timeout') return { kind: 'timeout', httpStatus: null, detail: result.detail };
      if (result.kind === 'connection') return { kind: 'transient', httpStatus: null, detail: result.detail };

      const { status, text } = result;
      if (status >= 200 && status < 300) {
        const booking =
          status === 200 || status === 201 ? parseBooking(text, result.unreadable) : 'not 200/201';
        if (typeof booking !== 'string') return { kind: 'booked', httpStatus: status, ...booking };
        // The carrier said yes but we can't read the booking: it may exist, so it is treated like a timeout.
        return {
          kind: 'timeout',
          httpStatus: status,
          detail: `HTTP ${status} answer unreadable: ${booking}`,
        };
      }
      if (status === 401 || status === 403) {
        // Our credentials for this carrier are wrong: not the parcel's fault, so no refusal.
        log?.error(
          { carrierId: carrier.id, httpStatus: status },
          'carrier rejected our credentials (carrier fault, not a refusal of the parcel)',
        );
        return {
          kind: 'transient',
          httpStatus: status,
          detail: `carrier rejected our credentials (HTTP ${status})`,
          carrierFault: 'auth',
        };
      }
      const detail =
        status >= 300 && status < 400
          ? `HTTP ${status}: redirect not followed`
          : `HTTP ${status}: ${(text ?? '').slice(0, 200)}`;
      if (status === 422) return { kind: 'refused', httpStatus: 422, detail };
      if (status < 400 || status === 429 || status >= 500) {
        return {
          kind: 'transient',
          httpStatus: status,
          detail,
          retryAfterMs: retryAfterMs(result.headers.get('retry-after')),
        };
      }
      // Any other 4xx is about our request: retrying the same call won't fix it.
      return { kind: 'refused', httpStatus: status, detail };
    },

    async cancel(carrier: CarrierEndpoint, reference: string): Promise<CancelOutcome> {
      const result = await outboundCall(`${carrier.baseUrl}/shipments/${encodeURIComponent(reference)}`, {
        method: 'DELETE',
        headers: headers(carrier),
        timeoutMs,
      });
      if (result.kind !== 'answer') return 'failed';
      if (result.status === 404) return 'not_found';
      return result.status >= 200 && result.status < 300 ? 'cancelled' : 'failed';
    },
  };
}
