/**
 * The order status machine the engine obeys. `transition()` in db/orders.ts refuses any move
 * this table does not list and applies the move's effects (below) in the same transaction, so
 * no caller lists `from` states or remembers an undo by hand.
 */
export const ORDER_STATUSES = [
  'received',
  'backordered',
  'on_hold',
  'allocated',
  'dispatched',
  'in_transit',
  'delivered',
  'cancelled',
  'failed',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** Timeline events told to the customer that do not change the order's status. */
export const TIMELINE_ONLY = ['out_for_delivery', 'failed_attempt', 'retried'] as const;
export type TimelineStatus = OrderStatus | (typeof TIMELINE_ONLY)[number];
/** Timeline events that may happen more than once in an attempt (one a delivery round). */
export const REPEATABLE: ReadonlySet<TimelineStatus> = new Set(['out_for_delivery', 'failed_attempt']);

export const FAILURE_REASONS = ['out_of_stock', 'no_carrier', 'carrier_failed', 'returned'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Every move the machine allows: a status never moves backwards. */
const MOVES: Record<OrderStatus, readonly OrderStatus[]> = {
  received: ['backordered', 'on_hold', 'allocated', 'cancelled', 'failed'],
  backordered: ['on_hold', 'allocated', 'cancelled', 'failed'],
  on_hold: ['backordered', 'allocated', 'cancelled', 'failed'],
  allocated: ['on_hold', 'dispatched', 'cancelled', 'failed'],
  dispatched: ['in_transit', 'delivered', 'failed'],
  in_transit: ['delivered', 'failed'],
  delivered: [],
  cancelled: [],
  failed: [],
};

/**
 * What entering a status does besides writing its event and notifications:
 * - `releaseStock`: every reservation the attempt holds goes back on the shelf (allocation's undo);
 * - `consumeStock`: reserved stock leaves the shelf with its parcels;
 * - `cancelBookings`: every parcel that is or may be booked at a carrier is marked
 *   `cancel_pending`, and a cancellation job DELETEs it until the carrier confirms.
 */
export interface Effects {
  releaseStock?: true;
  consumeStock?: true;
  cancelBookings?: true;
}
export const EFFECTS: Partial<Record<OrderStatus, Effects>> = {
  dispatched: { consumeStock: true },
  cancelled: { releaseStock: true, cancelBookings: true },
  failed: { releaseStock: true, cancelBookings: true },
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return MOVES[from].includes(to);
}

export const TERMINAL: ReadonlySet<OrderStatus> = new Set(['delivered', 'cancelled', 'failed']);

export function isTerminal(status: OrderStatus): boolean {
  return TERMINAL.has(status);
}

/** Statuses from which a shop may still cancel: nothing has left a warehouse. */
export const CANCELLABLE: ReadonlySet<OrderStatus> = new Set(
  ORDER_STATUSES.filter((s) => canTransition(s, 'cancelled')),
);

/** A status the machine forbids was asked for: a bug in the caller, never a user error. */
export class ForbiddenTransition extends Error {
  constructor(from: OrderStatus, to: OrderStatus) {
    super(`order status may not move from ${from} to ${to}`);
  }
}
