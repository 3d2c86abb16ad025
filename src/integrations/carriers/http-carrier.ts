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

/** The contract's carrier protocol: POST /shipments to book, DELETE /shipments/{id} to cancel. */
export function httpCarrier(timeoutMs: number): CarrierAdapter {
  return {
    async book(carrier: CarrierEndpoint, request: BookingRequest): Promise<BookingOutcome> {
      let response: Response;
      try {
        response = await fetch(`${carrier.baseUrl}/shipments`, {
          method: 'POST',
          headers: headers(carrier, {
            'content-type': 'application/json',
            'idempotency-key': request.reference,
          }),
          body: JSON.stringify(request),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        const name = (error as Error).name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          return { kind: 'timeout', httpStatus: null, detail: `no answer within ${timeoutMs} ms` };
        }
        return {
          kind: 'transient',
          httpStatus: null,
          detail: `connection failed: ${(error as Error).message}`,
        };
      }
      const text = await response.text().catch(() => '');
      if (response.status === 201 || response.status === 200) {
        let body: { trackingNumber?: unknown; estimatedDeliveryAt?: unknown } = {};
        try {
          body = JSON.parse(text);
        } catch {
          /* handled below */
        }
        if (typeof body.trackingNumber !== 'string' || body.trackingNumber === '') {
          return {
            kind: 'transient',
            httpStatus: response.status,
            detail: 'booking answer without a trackingNumber',
          };
        }
        const eta = typeof body.estimatedDeliveryAt === 'string' ? body.estimatedDeliveryAt : null;
        return {
          kind: 'booked',
          httpStatus: response.status,
          trackingNumber: body.trackingNumber,
          estimatedDeliveryAt: eta,
        };
      }
      const detail = `HTTP ${response.status}: ${text.slice(0, 200)}`;
      if (response.status === 422) return { kind: 'refused', httpStatus: 422, detail };
      if (response.status === 429 || response.status >= 500) {
        return {
          kind: 'transient',
          httpStatus: response.status,
          detail,
          retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
        };
      }
      // Any other 4xx is our request or our credentials: retrying the same call won't fix it.
      return { kind: 'refused', httpStatus: response.status, detail };
    },

    async cancel(carrier: CarrierEndpoint, reference: string): Promise<CancelOutcome> {
      try {
        const response = await fetch(`${carrier.baseUrl}/shipments/${encodeURIComponent(reference)}`, {
          method: 'DELETE',
          headers: headers(carrier),
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.status === 404) return 'not_found';
        return response.ok ? 'cancelled' : 'failed';
      } catch {
        return 'failed';
      }
    },
  };
}
