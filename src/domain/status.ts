/** Order statuses and the rule that a status never moves backwards. */
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

export const TERMINAL: ReadonlySet<OrderStatus> = new Set(['delivered', 'cancelled', 'failed']);

/** Statuses from which an order may still be cancelled (nothing has left a warehouse). */
export const CANCELLABLE: ReadonlySet<OrderStatus> = new Set([
  'received',
  'backordered',
  'on_hold',
  'allocated',
]);

const FORWARD: Record<OrderStatus, readonly OrderStatus[]> = {
  received: ['backordered', 'on_hold', 'allocated', 'cancelled', 'failed'],
  backordered: ['on_hold', 'allocated', 'cancelled', 'failed'],
  on_hold: ['allocated', 'cancelled', 'failed'],
  allocated: ['on_hold', 'dispatched', 'cancelled', 'failed'],
  dispatched: ['in_transit', 'delivered', 'failed'],
  in_transit: ['delivered', 'failed'],
  delivered: [],
  cancelled: [],
  failed: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return FORWARD[from].includes(to);
}

export function isTerminal(status: OrderStatus): boolean {
  return TERMINAL.has(status);
}

export const FAILURE_REASONS = ['out_of_stock', 'no_carrier', 'carrier_failed', 'returned'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];
