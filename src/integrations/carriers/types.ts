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
  | { kind: 'booked'; httpStatus: number; trackingNumber: string; estimatedDeliveryAt: string | null }
  /** 422: this carrier can't take the parcel; try the next one at once. */
  | { kind: 'refused'; httpStatus: number; detail: string }
  /** 429, 5xx, a refused connection: retry later. */
  | { kind: 'transient'; httpStatus: number | null; detail: string; retryAfterMs?: number }
  /** No answer in time: the booking may or may not exist. */
  | { kind: 'timeout'; httpStatus: null; detail: string };

export type CancelOutcome = 'cancelled' | 'not_found' | 'failed';

export interface CarrierAdapter {
  book(carrier: CarrierEndpoint, request: BookingRequest): Promise<BookingOutcome>;
  cancel(carrier: CarrierEndpoint, reference: string): Promise<CancelOutcome>;
}
