import { Type, type Static, type TObject } from '@sinclair/typebox';
import { DEFAULT_HORIZON_MINUTES, MAX_HORIZON_MINUTES, MIN_HORIZON_MINUTES } from '../domain/forecast.js';
import { DEFAULT_KPI_WINDOW, KPI_WINDOWS } from '../domain/kpis.js';
import { PRIORITIES } from '../domain/priority.js';
import { ORDER_STATUSES, type FailureReason } from '../domain/status.js';

/** A string from a fixed list (a plain JSON Schema enum: clear errors, clean OpenAPI). */
export function StringEnum<T extends readonly string[]>(values: T, options: object = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

const closed = { additionalProperties: false } as const;
const text = (max: number, options: object = {}) => Type.String({ minLength: 1, maxLength: max, ...options });

export const Customer = Type.Object(
  {
    name: text(200),
    phone: Type.Optional(
      Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'E.164, e.g. +8613800000000' }),
    ),
    email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
  },
  closed,
);

export const ShippingAddress = Type.Object(
  {
    region: text(64, { pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'e.g. shanghai-pudong' }),
    line1: text(200),
    line2: Type.Optional(Type.String({ maxLength: 200 })),
    city: text(100),
    postalCode: text(20),
    country: Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2' }),
  },
  closed,
);

export const OrderItem = Type.Object(
  { sku: text(64), quantity: Type.Integer({ minimum: 1, maximum: 999 }) },
  closed,
);

const orderFields = {
  externalId: text(100),
  priority: Type.Optional(StringEnum(PRIORITIES, { default: 'standard' })),
  customer: Customer,
  shippingAddress: ShippingAddress,
  items: Type.Array(OrderItem, { minItems: 1, maxItems: 100 }),
  contactless: Type.Optional(Type.Boolean({ default: false })),
  locale: Type.Optional(StringEnum(['zh-CN', 'en'] as const, { default: 'zh-CN' })),
  notify: Type.Optional(
    Type.Object(
      { channels: Type.Optional(Type.Array(StringEnum(['sms', 'email'] as const), { uniqueItems: true })) },
      closed,
    ),
  ),
};

export const OrderBody = Type.Object(orderFields, closed);
export type OrderBody = Static<typeof OrderBody>;

export const IdempotencyKey = Type.String({ minLength: 1, maxLength: 200 });

export const BatchOrder = Type.Object({ idempotencyKey: IdempotencyKey, ...orderFields }, closed);
export const BatchBody = Type.Object(
  { orders: Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1, maxItems: 500 }) },
  closed,
);

export const IdempotencyHeaders = Type.Object({ 'idempotency-key': IdempotencyKey });

export const IdParams = Type.Object({ id: Type.String({ maxLength: 200 }) }, closed);

/**
 * A request part whose fields with a `default` may be left out: ajv fills them in (useDefaults)
 * before the handler runs, so its type has them while the schema does not require them.
 */
function withDefaults<T extends TObject>(schema: T): T {
  const required = (schema.required ?? []).filter((key) => schema.properties[key]?.default === undefined);
  const { required: _all, ...rest } = schema;
  return (required.length > 0 ? { ...rest, required } : rest) as T;
}

export const Pagination = {
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
};

export const ListOrdersQuery = withDefaults(
  Type.Object({ status: Type.Optional(StringEnum(ORDER_STATUSES)), ...Pagination }, closed),
);

export const FeedbackBody = Type.Object(
  {
    score: Type.Integer({ minimum: 1, maximum: 5 }),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  closed,
);

export const CarrierEventBody = Type.Object(
  {
    trackingNumber: text(200),
    status: StringEnum([
      'in_transit',
      'out_for_delivery',
      'delivered',
      'failed_attempt',
      'returned',
    ] as const),
    at: Type.String({ format: 'date-time' }),
  },
  closed,
);
export type CarrierEventBody = Static<typeof CarrierEventBody>;

// Operators
const entityId = (description: string) =>
  Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description });

export const ShopBody = Type.Object(
  {
    name: text(200),
    webhookUrl: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2000 })),
    rateLimitPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 600 })),
  },
  closed,
);
export type ShopBody = Static<typeof ShopBody>;

export const WarehouseBody = Type.Object(
  {
    id: Type.Optional(entityId('chosen by the server when omitted')),
    name: text(200),
    region: ShippingAddress.properties.region,
    supplierId: Type.Optional(entityId('the supplier that stocks it')),
  },
  closed,
);
export type WarehouseBody = Static<typeof WarehouseBody>;

export const InventoryBody = Type.Object(
  {
    warehouseId: entityId('warehouse'),
    sku: text(64),
    quantity: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
  },
  closed,
);
export type InventoryBody = Static<typeof InventoryBody>;

export const InventoryQuery = withDefaults(
  Type.Object({ sku: Type.Optional(text(64)), warehouseId: Type.Optional(text(64)), ...Pagination }, closed),
);

export const SupplierBody = Type.Object({ id: entityId('supplier id'), name: text(200) }, closed);
export type SupplierBody = Static<typeof SupplierBody>;

export const SupplierPatch = Type.Object(
  {
    available: Type.Boolean({ description: "false: the supplier's warehouses count as empty to allocation" }),
  },
  closed,
);

export const RestockBody = Type.Object(
  {
    warehouseId: entityId('warehouse'),
    sku: text(64),
    quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    eta: Type.String({ format: 'date-time', description: 'RFC 3339: when it is expected' }),
  },
  closed,
);
export type RestockBody = Static<typeof RestockBody>;

export const RestocksQuery = withDefaults(
  Type.Object(
    {
      warehouseId: Type.Optional(text(64)),
      sku: Type.Optional(text(64)),
      received: Type.Optional(
        StringEnum(['true', 'false'] as const, {
          description: 'true: received ones only; false: inbound ones',
        }),
      ),
      ...Pagination,
    },
    closed,
  ),
);

const carrierFields = {
  name: text(200),
  kind: StringEnum(['http'] as const),
  baseUrl: Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2000 }),
  apiKey: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  webhookSecret: Type.String({ minLength: 8, maxLength: 500 }),
  regions: Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: '^(\\*|[a-z0-9][a-z0-9_-]*)$' }), {
    minItems: 1,
    maxItems: 1000,
    uniqueItems: true,
    description: '["*"] for every region',
  }),
  rank: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  rateLimitPerSecond: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  transitHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 60 })),
};
export const CarrierBody = Type.Object({ id: entityId('carrier id'), ...carrierFields }, closed);
export type CarrierBody = Static<typeof CarrierBody>;

export const CarrierPatch = Type.Object(
  {
    name: Type.Optional(carrierFields.name),
    baseUrl: Type.Optional(carrierFields.baseUrl),
    apiKey: Type.Optional(carrierFields.apiKey),
    webhookSecret: Type.Optional(carrierFields.webhookSecret),
    regions: Type.Optional(carrierFields.regions),
    rank: Type.Optional(carrierFields.rank),
    rateLimitPerSecond: Type.Optional(carrierFields.rateLimitPerSecond),
    transitHours: Type.Optional(carrierFields.transitHours),
    enabled: Type.Optional(Type.Boolean()),
  },
  { ...closed, minProperties: 1 },
);
export type CarrierPatch = Static<typeof CarrierPatch>;

export const CarrierIdParams = Type.Object({ carrierId: Type.String({ maxLength: 200 }) }, closed);
export const TokenParams = Type.Object({ token: Type.String({ maxLength: 200 }) }, closed);
export const PaginationQuery = withDefaults(Type.Object(Pagination, closed));

export const ShipmentsQuery = withDefaults(
  Type.Object(
    {
      overdue: StringEnum(['true'] as const, { description: 'only overdue parcels are listed' }),
      ...Pagination,
    },
    closed,
  ),
);

// Dead letters and retries (operators)
const nullableString = (description?: string) =>
  Type.Unsafe<string | null>({ type: 'string', nullable: true, ...(description ? { description } : {}) });
const time = (description: string) => Type.String({ format: 'date-time', description });
const uuid = Type.String({ format: 'uuid' });

export const DeadLetterAttempt = Type.Object(
  {
    carrierId: Type.String(),
    at: time('when the booking call started'),
    outcome: StringEnum(['booked', 'refused', 'transient', 'timeout'] as const, {
      description:
        'refused: 422; transient: 429, 5xx or a refused connection; timeout: no answer in time, or a call whose worker died',
    }),
    detail: nullableString('what the carrier answered'),
  },
  closed,
);

export const DeadLetter = Type.Object(
  {
    orderId: uuid,
    shopId: uuid,
    // Only these two are listed (listDeadLetters selects them), though the row's type is any reason.
    failureReason: Type.Unsafe<FailureReason>(StringEnum(['carrier_failed', 'no_carrier'] as const)),
    failedAt: time('the `at` of the failed event of the current attempt'),
    attempts: Type.Array(DeadLetterAttempt, {
      description: "booking calls for the parcels of the order's current attempt, oldest first",
    }),
  },
  closed,
);

export const DeadLetterList = Type.Object(
  {
    items: Type.Array(DeadLetter),
    nextCursor: nullableString('pass as ?cursor= for the next page; null on the last'),
  },
  { ...closed, description: 'Orders failed carrier_failed or no_carrier, newest failure first' },
);

export const RetryAccepted = Type.Object(
  {
    id: uuid,
    status: StringEnum(['received'] as const),
    attempt: Type.Integer({ minimum: 2, description: 'the new attempt (the failed one + 1)' }),
  },
  { ...closed, description: 'The new attempt started at received; its allocation is queued' },
);

// The scorecard (operators)
export const KpisQuery = withDefaults(
  Type.Object(
    {
      window: StringEnum(KPI_WINDOWS, {
        default: DEFAULT_KPI_WINDOW,
        description: 'orders closed in the last hour, 24 hours or 7 days',
      }),
    },
    closed,
  ),
);

// The forecast (operators)
export const ForecastQuery = withDefaults(
  Type.Object(
    {
      horizonMinutes: Type.Integer({
        minimum: MIN_HORIZON_MINUTES,
        maximum: MAX_HORIZON_MINUTES,
        default: DEFAULT_HORIZON_MINUTES,
        description: 'minutes ahead to forecast (points every minute up to 180, then every 5)',
      }),
    },
    closed,
  ),
);
