import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import type { OrderStatus, TimelineStatus, FailureReason } from '../domain/status.js';
import type { Priority } from '../domain/priority.js';
import type { AllocationState, AttemptOutcome, ParcelStatus } from '../domain/parcels.js';
import type { Channel, NotificationState, OutboxMessage } from '../domain/notify.js';

const time = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const createdAt = () => time('created_at').notNull().defaultNow();

export const shops = pgTable('shops', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  /** Public half of the API key, used to find the shop; the secret half is only stored hashed. */
  apiKeyId: text('api_key_id').notNull().unique(),
  apiKeyHash: text('api_key_hash').notNull(),
  webhookUrl: text('webhook_url'),
  webhookSecret: text('webhook_secret').notNull(),
  rateLimitPerMinute: integer('rate_limit_per_minute').notNull().default(600),
  createdAt: createdAt(),
});

/** A supplier: while unavailable, its warehouses count as empty to allocation. */
export const suppliers = pgTable('suppliers', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  available: boolean('available').notNull().default(true),
  createdAt: createdAt(),
  updatedAt: time('updated_at').notNull().defaultNow(),
});

export const warehouses = pgTable('warehouses', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  region: text('region').notNull(),
  supplierId: text('supplier_id'),
  createdAt: createdAt(),
});

export const inventory = pgTable(
  'inventory',
  {
    warehouseId: text('warehouse_id')
      .notNull()
      .references(() => warehouses.id),
    sku: text('sku').notNull(),
    onHand: integer('on_hand').notNull().default(0),
    reserved: integer('reserved').notNull().default(0),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.warehouseId, t.sku] }),
    index('inventory_sku_idx').on(t.sku),
    // The database itself refuses an oversell, whatever the code above it does.
    check('inventory_reserved_within_on_hand', sql`${t.reserved} >= 0 AND ${t.reserved} <= ${t.onHand}`),
  ],
);

export const carriers = pgTable('carriers', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  kind: text('kind').notNull().default('http'),
  baseUrl: text('base_url').notNull(),
  apiKey: text('api_key'),
  webhookSecret: text('webhook_secret').notNull(),
  regions: jsonb('regions').$type<string[]>().notNull(),
  rank: integer('rank').notNull(),
  rateLimitPerSecond: integer('rate_limit_per_second'),
  transitHours: integer('transit_hours'),
  enabled: boolean('enabled').notNull().default(true),
  createdAt: createdAt(),
  updatedAt: time('updated_at').notNull().defaultNow(),
});

export interface Customer {
  name: string;
  phone?: string;
  email?: string;
}
export interface Address {
  region: string;
  line1: string;
  city: string;
  postalCode: string;
  country: string;
  line2?: string;
}

export const orders = pgTable(
  'orders',
  {
    id: uuid('id').primaryKey(),
    shopId: uuid('shop_id')
      .notNull()
      .references(() => shops.id),
    idempotencyKey: text('idempotency_key').notNull(),
    /** sha256 of the canonical request body: same key + other body is a conflict. */
    requestHash: text('request_hash').notNull(),
    externalId: text('external_id').notNull(),
    status: text('status').$type<OrderStatus>().notNull(),
    priority: text('priority').$type<Priority>().notNull(),
    /** 1 at intake; an operator's retry of a failed order starts attempt 2, 3, … */
    attempt: integer('attempt').notNull().default(1),
    customer: jsonb('customer').$type<Customer>().notNull(),
    shippingAddress: jsonb('shipping_address').$type<Address>().notNull(),
    region: text('region').notNull(),
    contactless: boolean('contactless').notNull().default(false),
    locale: text('locale').notNull(),
    notifyChannels: jsonb('notify_channels').$type<string[]>().notNull(),
    trackingToken: text('tracking_token').notNull().unique(),
    promisedBy: time('promised_by').notNull(),
    initialPromisedBy: time('initial_promised_by').notNull(),
    deliveredAt: time('delivered_at'),
    failureReason: text('failure_reason').$type<FailureReason>(),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    // The idempotency rule lives in the database: concurrent duplicates meet this constraint.
    unique('orders_shop_idempotency_key').on(t.shopId, t.idempotencyKey),
    index('orders_shop_created_idx').on(t.shopId, t.createdAt, t.id),
    index('orders_status_updated_idx').on(t.status, t.updatedAt),
    // The dead-letter view, newest failure first (a failed order's updatedAt is when it failed).
    // Its queries repeat this predicate literally (db/dead-letters.ts) so the planner uses it.
    index('orders_dead_letters_idx')
      .on(t.updatedAt, t.id)
      .where(sql`status = 'failed' AND failure_reason IN ('carrier_failed', 'no_carrier')`),
    // The scorecard's orders received in a window (db/kpis.ts): a range scan, not every order.
    index('orders_created_idx').on(t.createdAt),
  ],
);

export const orderItems = pgTable(
  'order_items',
  {
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    line: integer('line').notNull(),
    sku: text('sku').notNull(),
    quantity: integer('quantity').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orderId, t.line] })],
);

/** Stock held for an order: reserved at allocation, consumed at dispatch, released on failure/cancel. */
export const allocations = pgTable(
  'allocations',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    attempt: integer('attempt').notNull(),
    warehouseId: text('warehouse_id').notNull(),
    sku: text('sku').notNull(),
    quantity: integer('quantity').notNull(),
    state: text('state').$type<AllocationState>().notNull().default('reserved'),
    /** When it was reserved: the last hour's allocations give each stock row its cover. */
    createdAt: createdAt(),
  },
  (t) => [
    index('allocations_order_idx').on(t.orderId),
    index('allocations_recent_idx').on(t.createdAt, t.warehouseId, t.sku),
  ],
);

/** Inbound stock: counted as `inbound` until received, when it is added to on-hand. */
export const restocks = pgTable(
  'restocks',
  {
    id: uuid('id').primaryKey(),
    warehouseId: text('warehouse_id')
      .notNull()
      .references(() => warehouses.id),
    sku: text('sku').notNull(),
    quantity: integer('quantity').notNull(),
    eta: time('eta').notNull(),
    receivedAt: time('received_at'),
    createdAt: createdAt(),
  },
  (t) => [
    index('restocks_inbound_idx')
      .on(t.sku, t.warehouseId)
      .where(sql`received_at IS NULL`),
  ],
);

/** A stock row at risk of running out before its next inbound (or STOCK_RISK_HOURS): since when. */
export const stockAlerts = pgTable(
  'stock_alerts',
  {
    warehouseId: text('warehouse_id').notNull(),
    sku: text('sku').notNull(),
    since: time('since').notNull(),
  },
  (t) => [primaryKey({ columns: [t.warehouseId, t.sku] })],
);

/** One parcel: its id is the `reference` and the Idempotency-Key sent to the carrier. */
export const shipments = pgTable(
  'shipments',
  {
    id: uuid('id').primaryKey(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    attempt: integer('attempt').notNull(),
    warehouseId: text('warehouse_id').notNull(),
    carrierId: text('carrier_id'),
    trackingNumber: text('tracking_number'),
    status: text('status').$type<ParcelStatus>().notNull().default('pending'),
    estimatedDeliveryAt: time('estimated_delivery_at'),
    bookedAt: time('booked_at'),
    /** When a carrier event is due at the latest (ETA, or booking + transit); overdue after a grace. */
    expectedBy: time('expected_by'),
    lastEventAt: time('last_event_at'),
    deliveredAt: time('delivered_at'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('shipments_order_idx').on(t.orderId),
    unique('shipments_carrier_tracking').on(t.carrierId, t.trackingNumber),
    index('shipments_status_expected_idx').on(t.status, t.expectedBy),
    index('shipments_booked_idx').on(t.bookedAt, t.id),
  ],
);

/** The order's timeline: one row per status change (and per carrier timeline event). */
export const orderEvents = pgTable(
  'order_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    attempt: integer('attempt').notNull(),
    status: text('status').$type<TimelineStatus>().notNull(),
    /** 1 for a status change; the n-th out_for_delivery / failed_attempt of an attempt has n. */
    seq: integer('seq').notNull().default(1),
    at: time('at').notNull(),
    detail: text('detail'),
    recordedAt: time('recorded_at').notNull().defaultNow(),
  },
  (t) => [
    // A stage that runs twice cannot write its event twice.
    unique('order_events_once').on(t.orderId, t.attempt, t.status, t.seq),
  ],
);

/**
 * What the operators' scorecard reads of one closed order (db/kpis.ts), written by the closing
 * transition — delivered or failed — in its transaction (db/orders.ts transition()), so a window is
 * one range scan over these rows rather than a join of every closed order to its order, parcels and
 * events. One row per order: a retried order's new close replaces its earlier one (it counts once,
 * by how it last closed), and startRetry() deletes it (an attempt in progress counts nowhere).
 */
export const orderClosures = pgTable(
  'order_closures',
  {
    orderId: uuid('order_id')
      .primaryKey()
      .references(() => orders.id),
    attempt: integer('attempt').notNull(),
    status: text('status').$type<'delivered' | 'failed'>().notNull(),
    failureReason: text('failure_reason').$type<FailureReason>(),
    /** The closing event's recordedAt: when the engine recorded the close. */
    closedAt: time('closed_at').notNull(),
    /** Delivered with deliveredAt ≤ initialPromisedBy (false when failed). */
    onTime: boolean('on_time').notNull(),
    priority: text('priority').$type<Priority>().notNull(),
    region: text('region').notNull(),
    /** received → dispatched of the closing attempt (its events' `at`), ms; null if never dispatched. */
    processingMs: doublePrecision('processing_ms'),
    /** Distinct carriers and warehouses of the closing attempt's parcels (booked parcels' carriers only). */
    carriers: text('carriers').array().notNull(),
    warehouses: text('warehouses').array().notNull(),
  },
  (t) => [index('order_closures_closed_idx').on(t.closedAt)],
);

/** Outbox of messages to send: written in the transaction that changes the status. */
export const notifications = pgTable(
  'notifications',
  {
    id: uuid('id').primaryKey(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    attempt: integer('attempt').notNull(),
    /** The timeline status told, `{status}#{n}` for the n-th repeat of a timeline event (n ≥ 2). */
    status: text('status').notNull(),
    channel: text('channel').$type<Channel>().notNull(),
    state: text('state').$type<NotificationState>().notNull().default('pending'),
    tries: integer('tries').notNull().default(0),
    lastError: text('last_error'),
    /** The whole message, rendered when the status changed: sending reads nothing else. */
    body: jsonb('body').$type<OutboxMessage>().notNull(),
    at: time('at').notNull(),
    /** A sender's claim: no other run sends the row until this passes. */
    leaseUntil: time('lease_until'),
    sentAt: time('sent_at'),
    createdAt: createdAt(),
  },
  (t) => [
    unique('notifications_once').on(t.orderId, t.attempt, t.status, t.channel),
    index('notifications_state_idx').on(t.state, t.createdAt),
  ],
);

/** Every booking call made to a carrier, for success rates and the dead-letter view. */
export const carrierAttempts = pgTable(
  'carrier_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orderId: uuid('order_id').notNull(),
    shipmentId: uuid('shipment_id').notNull(),
    carrierId: text('carrier_id').notNull(),
    /** When the call started: the attempt row is the booking intent, written before the call. */
    at: time('at').notNull().defaultNow(),
    /** `pending` while the call is in flight (or its worker died): a possible booking. */
    outcome: text('outcome').$type<AttemptOutcome>().notNull(),
    httpStatus: integer('http_status'),
    detail: text('detail'),
    /** When the answer came (null while in flight): a backoff or Retry-After counts from here. */
    answeredAt: time('answered_at'),
    /** Set once the carrier confirmed (2xx or 404) that a possible booking is gone. */
    cancelledAt: time('cancelled_at'),
  },
  (t) => [
    index('carrier_attempts_carrier_idx').on(t.carrierId, t.id),
    index('carrier_attempts_order_idx').on(t.orderId),
  ],
);

export const feedback = pgTable('feedback', {
  orderId: uuid('order_id')
    .primaryKey()
    .references(() => orders.id),
  score: integer('score').notNull(),
  comment: text('comment'),
  createdAt: createdAt(),
});

/**
 * A region locked down by an operator: its orders go `on_hold` until the row is lifted (deleted)
 * or `until` passes. One row per region: a second lockdown replaces the first.
 */
export const regionLockdowns = pgTable('region_lockdowns', {
  region: text('region').primaryKey(),
  reason: text('reason').notNull(),
  /** When the lockdown lifts by itself; null: until an operator lifts it. */
  until: time('until'),
  createdAt: createdAt(),
  updatedAt: time('updated_at').notNull().defaultNow(),
});

/*
 * Coordination with QUEUE_BACKEND=postgres (db/coordination.ts): what Redis holds otherwise. Keys
 * are full names under a QUEUE_PREFIX; several prefixes share these tables. A row past its
 * `expires_at` reads as absent, as an expired Redis key.
 */

/** A string per key (flags, pass locks, carrier breakers' JSON records); no expiry when null. */
export const coordinationValues = pgTable('coordination_values', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  expiresAt: time('expires_at'),
});

/** The calls each sliding log accepted, one row per call, `at` in ms on the database's clock. */
export const coordinationLog = pgTable(
  'coordination_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    key: text('key').notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
  },
  (t) => [index('coordination_log_key_at_idx').on(t.key, t.at)],
);

/** A set of strings per key. */
export const coordinationMembers = pgTable(
  'coordination_members',
  {
    key: text('key').notNull(),
    member: text('member').notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.member] })],
);

/** A lane's fair-queueing frontier (queues/fair.ts); its shops' tags go with it when it expires. */
export const coordinationFairLanes = pgTable('coordination_fair_lanes', {
  key: text('key').primaryKey(),
  frontier: integer('frontier').notNull().default(0),
  expiresAt: time('expires_at'),
});

/** Each shop's last tag in a lane (coordination_fair_lanes.key). */
export const coordinationFairTags = pgTable(
  'coordination_fair_tags',
  {
    key: text('key').notNull(),
    shop: text('shop').notNull(),
    tag: integer('tag').notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.shop] })],
);
