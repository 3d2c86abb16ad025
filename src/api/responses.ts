/**
 * Response schemas: what every route answers, for the OpenAPI document and for Fastify's
 * serializer. fast-json-stringify writes only the properties a schema lists (and coerces to
 * the listed type; `null` into a non-nullable string becomes ""), so each object here lists
 * every field its handler produces, with its nullability, and is closed.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { KPI_WINDOWS } from '../domain/kpis.js';
import { PARCEL_STATUSES } from '../domain/parcels.js';
import { PRIORITIES } from '../domain/priority.js';
import { FAILURE_REASONS, ORDER_STATUSES, TIMELINE_ONLY } from '../domain/status.js';
import { StringEnum } from './schemas.js';

const closed = { additionalProperties: false } as const;

/**
 * `schema` or null: OpenAPI 3.0's `nullable` (which fast-json-stringify honours: null is written
 * as null); an enum lists null too, as OpenAPI 3.0.3 asks.
 */
export function Nullable<T extends TSchema>(schema: T, options: object = {}) {
  const values = (schema as { enum?: unknown[] }).enum;
  return Type.Unsafe<Static<T> | null>({
    ...schema,
    nullable: true,
    ...(values ? { enum: [...values, null] } : {}),
    ...options,
  });
}

/** An RFC 3339 UTC time, e.g. 2026-01-31T08:00:00.000Z. */
const Time = (description?: string) =>
  Type.String({ format: 'date-time', ...(description ? { description } : {}) });
const NullableTime = (description?: string) => Nullable(Time(description));

const OrderStatus = StringEnum(ORDER_STATUSES);
const TimelineStatus = StringEnum([...ORDER_STATUSES, ...TIMELINE_ONLY]);
const ParcelStatus = StringEnum(PARCEL_STATUSES);
const Priority = StringEnum(PRIORITIES);
const Uuid = Type.String({ format: 'uuid' });

// Errors

export const FieldIssue = Type.Object({ path: Type.String(), message: Type.String() }, closed);

/** RFC 9457 problem object, as `problem()` in plugins/errors.ts builds it. */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'urn:surgeline:problem:<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'e.g. validation_failed, not_found, idempotency_conflict' }),
    errors: Type.Optional(Type.Array(FieldIssue, { description: 'for validation_failed' })),
  },
  { ...closed, title: 'Problem' },
);
export type Problem = Static<typeof Problem>;

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad Request: validation_failed (with errors) or malformed_json',
  401: 'Unauthorized: missing or wrong credentials',
  403: 'Forbidden: a request authenticated by the admin session cookie that changes anything, without X-Surgeline-Admin: 1',
  404: 'Not Found: nothing of the caller has that id',
  409: 'Conflict: the current state forbids it (see code)',
  413: 'Content Too Large: body over 1 MiB',
  415: 'Unsupported Media Type: send application/json',
  422: 'Unprocessable Content: a named business code (e.g. unknown_sku)',
  429: "Too Many Requests: over the shop's rate limit; see Retry-After and RateLimit-* headers",
  500: 'Internal Server Error',
  503: 'Service Unavailable: a dependency is not answering or the service is overloaded; see Retry-After',
};

/**
 * Problem answers for the given statuses. Keyed by media type, so Fastify serializes with the
 * Problem schema exactly the replies sent as application/problem+json (sendProblem); anything
 * else sent with one of these statuses falls back to JSON.stringify, never loses a field.
 */
export function problems<const S extends readonly number[]>(...statuses: S) {
  const entries = [...statuses, 500].map((status) => [
    status,
    {
      description: PROBLEM_DESCRIPTIONS[status] ?? 'Error',
      content: { 'application/problem+json': { schema: Problem } },
    },
  ]);
  return Object.fromEntries(entries) as Record<
    S[number] | 500,
    { description: string; content: { 'application/problem+json': { schema: typeof Problem } } }
  >;
}

/** What every shop route can answer besides its own errors: auth, the rate limit, a dependency away. */
export const SHOP_ERRORS = [401, 429, 503] as const;
/** Admin routes: auth, a dependency away. */
export const ADMIN_ERRORS = [401, 503] as const;
/** A route taking a JSON body: invalid or malformed (400), too large (413), not JSON (415). */
export const BODY_ERRORS = [400, 413, 415] as const;

/** A cursor-paginated list: `{ items, nextCursor }`. */
export function Page<T extends TSchema>(item: T, description: string) {
  return Type.Object(
    {
      items: Type.Array(item),
      nextCursor: Nullable(Type.String(), {
        description: 'pass as ?cursor= for the next page; null on the last',
      }),
    },
    { ...closed, description },
  );
}

// Orders

export const OrderLinks = Type.Object(
  {
    self: Type.String({ description: '/v1/orders/{id}' }),
    tracking: Type.String({ description: '<PUBLIC_URL>/v1/track/{token}' }),
  },
  closed,
);

export const OrderAccepted = Type.Object(
  {
    id: Uuid,
    status: OrderStatus,
    priority: Priority,
    promisedBy: Time('the delivery promise'),
    links: OrderLinks,
  },
  { ...closed, description: 'The order (202 when created, 200 for a repeat of the same key and body)' },
);

export const BatchResult = Type.Object(
  {
    results: Type.Array(
      Type.Object(
        {
          status: Type.Integer({ description: '202, 200 or the error status' }),
          id: Type.Optional(Uuid),
          error: Type.Optional(Problem),
        },
        closed,
      ),
      { description: 'in request order' },
    ),
  },
  { ...closed, description: 'One result per order' },
);

export const OrderSummary = Type.Object(
  {
    id: Uuid,
    externalId: Type.String(),
    status: OrderStatus,
    priority: Priority,
    promisedBy: Time(),
    createdAt: Time(),
  },
  closed,
);
export const OrderList = Page(OrderSummary, "The shop's orders, newest first");

export const OrderView = Type.Object(
  {
    id: Uuid,
    externalId: Type.String(),
    status: OrderStatus,
    priority: Priority,
    promisedBy: Time('the current promise'),
    initialPromisedBy: Time('the promise given at intake'),
    createdAt: Time(),
    updatedAt: Time(),
    deliveredAt: NullableTime("the last parcel's delivery"),
    failureReason: Nullable(StringEnum(FAILURE_REASONS)),
    links: OrderLinks,
    items: Type.Array(Type.Object({ sku: Type.String(), quantity: Type.Integer() }, closed)),
    allocations: Type.Array(
      Type.Object({ warehouseId: Type.String(), sku: Type.String(), quantity: Type.Integer() }, closed),
    ),
    shipments: Type.Array(
      Type.Object(
        {
          id: Uuid,
          carrierId: Nullable(Type.String()),
          trackingNumber: Nullable(Type.String()),
          status: ParcelStatus,
          estimatedDeliveryAt: NullableTime(),
        },
        closed,
      ),
      { description: 'one per parcel; id is the carrier `reference`' },
    ),
    events: Type.Array(
      Type.Object({ status: TimelineStatus, at: Time(), detail: Nullable(Type.String()) }, closed),
      { description: 'the full timeline, oldest first' },
    ),
  },
  { ...closed, description: 'The order with its parcels and timeline' },
);

export const FeedbackView = Type.Object(
  { orderId: Uuid, score: Type.Integer(), comment: Nullable(Type.String()), createdAt: Time() },
  { ...closed, description: 'The feedback, recorded' },
);

// Customers

export const Tracking = Type.Object(
  {
    status: OrderStatus,
    promisedBy: Time(),
    deliveredAt: NullableTime(),
    events: Type.Array(Type.Object({ status: TimelineStatus, at: Time() }, closed)),
    shipments: Type.Array(
      Type.Object(
        {
          carrierId: Nullable(Type.String()),
          trackingNumber: Nullable(Type.String()),
          status: ParcelStatus,
          estimatedDeliveryAt: NullableTime(),
        },
        closed,
      ),
    ),
  },
  { ...closed, description: 'Status, promise and timeline, without personal data' },
);

// Carriers

export const CarrierEventAccepted = Type.Object(
  { accepted: Type.Boolean() },
  { ...closed, description: 'Applied (a repeat or a late event changes nothing and is answered the same)' },
);

// Operators

export const ShopCreated = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    webhookUrl: Nullable(Type.String()),
    rateLimitPerMinute: Type.Integer(),
    apiKey: Type.String({ description: 'shown once' }),
    webhookSecret: Type.String(),
  },
  { ...closed, description: 'The shop, with its API key (shown once)' },
);

export const WarehouseView = Type.Object(
  { id: Type.String(), name: Type.String(), region: Type.String(), supplierId: Nullable(Type.String()) },
  { ...closed, description: 'The warehouse' },
);

export const InventoryRow = Type.Object(
  {
    warehouseId: Type.String(),
    sku: Type.String(),
    onHand: Type.Integer(),
    reserved: Type.Integer(),
    available: Type.Integer({ description: 'onHand − reserved, never negative' }),
    inbound: Type.Integer({ description: 'units in unreceived restocks' }),
    inboundEta: NullableTime('the earliest ETA of those restocks'),
    coverHours: Nullable(Type.Number({ minimum: 0 }), {
      description:
        "available ÷ units of this row allocated in the last 60 minutes (per hour): hours the stock lasts at the last hour's demand; null when nothing was allocated in that hour",
    }),
  },
  { ...closed, description: 'Stock of a SKU in a warehouse' },
);
export const InventoryList = Page(InventoryRow, 'Stock levels');

export const StockAlertView = Type.Object(
  {
    warehouseId: Type.String(),
    sku: Type.String(),
    available: Type.Integer(),
    coverHours: Type.Number({ minimum: 0 }),
    inboundEta: NullableTime('the earliest ETA of its unreceived restocks'),
    since: Time('when the row became at risk'),
  },
  closed,
);
export const StockAlertList = Type.Object(
  { items: Type.Array(StockAlertView) },
  {
    ...closed,
    description:
      'Stock rows at risk (cover shorter than the time until inboundEta or, with nothing inbound, than STOCK_RISK_HOURS), oldest alert first',
  },
);

export const SupplierView = Type.Object(
  { id: Type.String(), name: Type.String(), available: Type.Boolean() },
  { ...closed, description: 'The supplier' },
);
export const SupplierList = Page(SupplierView, 'Suppliers by id');

export const RestockView = Type.Object(
  {
    id: Uuid,
    warehouseId: Type.String(),
    sku: Type.String(),
    quantity: Type.Integer(),
    eta: Time(),
    receivedAt: NullableTime('null while inbound'),
  },
  { ...closed, description: 'The restock' },
);
export const RestockList = Page(RestockView, 'Restocks, earliest ETA first');

export const CarrierView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    kind: Type.String({ enum: ['http'] }),
    baseUrl: Type.String(),
    regions: Type.Array(Type.String(), { description: '["*"] for every region' }),
    rank: Type.Integer({ description: 'a lower rank is tried first' }),
    rateLimitPerSecond: Nullable(Type.Integer()),
    transitHours: Nullable(Type.Integer()),
    enabled: Type.Boolean(),
    breaker: Type.Object(
      {
        state: StringEnum(['closed', 'open', 'half_open'] as const),
        since: NullableTime('null if it never changed'),
      },
      closed,
    ),
    successRate: Nullable(Type.Number({ minimum: 0, maximum: 1 }), {
      description: 'share of the last 100 booking calls answered 201; null when none',
    }),
  },
  { ...closed, description: 'The carrier (without apiKey and webhookSecret)' },
);
export const CarrierList = Page(CarrierView, 'Carriers with breaker state and success rate');

export const OverdueShipment = Type.Object(
  {
    shipmentId: Uuid,
    orderId: Uuid,
    carrierId: Nullable(Type.String()),
    trackingNumber: Nullable(Type.String()),
    status: ParcelStatus,
    estimatedDeliveryAt: NullableTime(),
    lastEventAt: NullableTime("the `at` of the parcel's latest carrier event"),
  },
  closed,
);
export const OverdueShipmentList = Page(OverdueShipment, 'Overdue parcels, newest booking first');

export const Lockdown = Type.Object(
  {
    region: Type.String(),
    reason: Type.String(),
    until: NullableTime('it lifts by itself then; null until an operator lifts it'),
    since: Time(),
  },
  { ...closed, description: 'The lockdown in force' },
);
export const LockdownList = Type.Object(
  { items: Type.Array(Lockdown) },
  { ...closed, description: 'Lockdowns in force, oldest first' },
);
/** An answer without a body (204): `reply.code(204).send()`; `type: 'null'` gives it no content in OpenAPI. */
export const NoContent = Type.Unsafe<undefined>({ type: 'null', description: 'No content' });

// Service

export const Health = Type.Object(
  { status: StringEnum(['ok'] as const) },
  { ...closed, description: 'Alive' },
);
export const Ready = Type.Object(
  {
    status: StringEnum(['ready'] as const),
    redis: StringEnum(['up'] as const),
    database: StringEnum(['up'] as const),
  },
  { ...closed, description: 'Redis and the database answer' },
);

// The scorecard (operators)

const Rate = (description: string) => Nullable(Type.Number({ minimum: 0, maximum: 1 }), { description });
const rateFields = {
  onTimeRate: Rate('delivered with deliveredAt ≤ initialPromisedBy ÷ delivered; null when none delivered'),
  errorRate: Rate(
    'ended failed (any reason, returned included) ÷ closed (delivered + failed); null when none closed',
  ),
  satisfaction: Rate('feedback scores ≥ 4 ÷ all scores of the closed orders; null when no feedback'),
};

export const KpiBreakdownEntry = Type.Object(
  { orders: Type.Integer({ description: 'orders of this slice closed in the window' }), ...rateFields },
  closed,
);
const Slice = (description: string) => Type.Record(Type.String(), KpiBreakdownEntry, { description });

export const Scorecard = Type.Object(
  {
    window: StringEnum(KPI_WINDOWS),
    ...rateFields,
    processingTimeMs: Type.Object(
      { p50: Nullable(Type.Number()), p95: Nullable(Type.Number()) },
      {
        ...closed,
        description: 'received → dispatched of the closed orders that were dispatched; null when none',
      },
    ),
    ordersPerMinute: Type.Number({ description: 'orders received (taken in) in the window ÷ its minutes' }),
    queueDepths: Type.Record(Type.String(), Type.Integer(), {
      description: 'jobs waiting, prioritized, delayed or active per queue (empty while Redis is away)',
    }),
    targets: Type.Object(
      { onTimeRate: Type.Number(), errorRate: Type.Number(), satisfaction: Type.Number() },
      { ...closed, description: 'on-time and satisfaction at least, error rate at most' },
    ),
    breakdown: Type.Object(
      {
        priority: Slice('by priority'),
        region: Slice('by shipping region'),
        carrier: Slice("by carrier of the order's parcels (an order at two carriers counts in each)"),
        warehouse: Slice("by warehouse of the order's parcels and reservations (likewise)"),
      },
      closed,
    ),
  },
  { ...closed, description: 'The scorecard over the orders closed (delivered or failed) in the window' },
);

// The operations page's history (operators)

export const ThroughputHistory = Type.Object(
  {
    minutes: Type.Array(
      Type.Object(
        {
          at: Time('start of the minute'),
          received: Type.Integer({ minimum: 0, description: 'orders taken in' }),
          delivered: Type.Integer({ minimum: 0, description: 'orders closed delivered' }),
          failed: Type.Integer({ minimum: 0, description: 'orders closed failed (any reason)' }),
        },
        closed,
      ),
      { description: 'the last 60 minutes, oldest first, the current (partial) minute last' },
    ),
  },
  { ...closed, description: 'Orders per minute over the last hour, from the database' },
);

export const QueueDepthHistory = Type.Object(
  {
    intervalSeconds: Type.Integer({ description: 'seconds between readings' }),
    samples: Type.Array(
      Type.Object(
        {
          at: Time('when the depths were read'),
          depths: Type.Record(Type.String(), Type.Integer(), {
            description:
              'jobs waiting, prioritized, delayed or active per queue, as in the scorecard (empty: Redis was away)',
          }),
        },
        closed,
      ),
      { description: 'the last hour, oldest first' },
    ),
  },
  {
    ...closed,
    description:
      'Queue depths over the last hour as sampled by the API process that answers (in memory: each process has its own, a new one starts empty)',
  },
);

// The forecast (operators)

export const ForecastPoint = Type.Object(
  {
    at: Time('start of the minute forecast'),
    expected: Type.Number({ minimum: 0, description: 'orders expected in that minute' }),
    low: Type.Number({ minimum: 0, description: 'lower end of the 95 % band (never below 0)' }),
    high: Type.Number({ minimum: 0, description: 'upper end of the 95 % band' }),
  },
  closed,
);

export const Forecast = Type.Object(
  {
    generatedAt: Time(),
    horizonMinutes: Type.Integer(),
    points: Type.Array(ForecastPoint, {
      description:
        'from the minute after the current one to horizonMinutes ahead: every minute up to a 180-minute horizon, every 5 minutes beyond',
    }),
    recommendedReplicas: Type.Record(Type.String(), Type.Integer({ minimum: 1 }), {
      description:
        'worker replicas per queue (the names of WORKER_QUEUES) that keep up with the peak of the forecast, with headroom',
    }),
  },
  {
    ...closed,
    description: 'Orders per minute expected from the recent intake, and the replicas to serve them',
  },
);
