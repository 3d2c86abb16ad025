/** What the engine needs from a logistics partner. One file per kind; `http` is the contract's protocol. */
export interface CarrierEndpoint {
  id: string;
  kind: string;
  baseUrl: string;
  apiKey: string | null;
}

export interface BookingRequest {
  reference: string;
  orderId: string;
  region: string;
  address: unknown;
  items: { sku: string; quantity: number }[];
  contactless: boolean;
  priority: string;
}

export type BookingOutcome =
  /** 200/201 with a trackingNumber: the parcel is booked. */
  | { kind: 'booked'; httpStatus: number; trackingNumber: string; estimatedDeliveryAt: string | null }
  /** 422 or another 4xx about the parcel: this carrier can't take it; try the next one at once. */
  | { kind: 'refused'; httpStatus: number; detail: string }
  /** 429, 5xx, 3xx, a refused connection, or 401/403 (`carrierFault: 'auth'`, our credentials): retry later. */
  | {
      kind: 'transient';
      httpStatus: number | null;
      detail: string;
      retryAfterMs?: number;
      carrierFault?: 'auth';
    }
  /** Ambiguous, the booking may or may not exist: no answer in time, or an unreadable 2xx answer. */
  | { kind: 'timeout'; httpStatus: number | null; detail: string };

export type CancelOutcome = 'cancelled' | 'not_found' | 'failed';

export interface CarrierAdapter {
  book(carrier: CarrierEndpoint, request: BookingRequest): Promise<BookingOutcome>;
  cancel(carrier: CarrierEndpoint, reference: string): Promise<CancelOutcome>;
}
