/** The demo's closing report, computed from the orders and their timelines. Pure. */
export interface ReportOrder {
  id: string;
  status: string;
  priority: string;
  failureReason: string | null;
  initialPromisedBy: Date;
  deliveredAt: Date | null;
}
export interface ReportEvent {
  orderId: string;
  status: string;
  recordedAt: Date;
}

export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

const STAGES: [string, string, string][] = [
  ['allocation', 'received', 'allocated'],
  ['dispatch', 'allocated', 'dispatched'],
  ['transit', 'dispatched', 'delivered'],
  ['end to end', 'received', 'delivered'],
];

export interface DemoReport {
  orders: number;
  byStatus: Record<string, number>;
  failureReasons: Record<string, number>;
  onTimeRate: number | null;
  errorRate: number | null;
  stages: { stage: string; count: number; p50Ms: number | null; p95Ms: number | null }[];
}

export function buildReport(orders: ReportOrder[], events: ReportEvent[]): DemoReport {
  const byStatus: Record<string, number> = {};
  const failureReasons: Record<string, number> = {};
  for (const o of orders) {
    byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
    if (o.failureReason) failureReasons[o.failureReason] = (failureReasons[o.failureReason] ?? 0) + 1;
  }
  const delivered = orders.filter((o) => o.status === 'delivered');
  const failed = orders.filter((o) => o.status === 'failed');
  const onTime = delivered.filter((o) => o.deliveredAt && o.deliveredAt <= o.initialPromisedBy);

  // When the engine recorded each status (recordedAt), per order.
  const times = new Map<string, Map<string, number>>();
  for (const e of events) {
    const perOrder = times.get(e.orderId) ?? new Map<string, number>();
    perOrder.set(e.status, e.recordedAt.getTime());
    times.set(e.orderId, perOrder);
  }
  const stages = STAGES.map(([stage, from, to]) => {
    const durations: number[] = [];
    for (const perOrder of times.values()) {
      const start = perOrder.get(from);
      const end = perOrder.get(to);
      if (start !== undefined && end !== undefined) durations.push(end - start);
    }
    return {
      stage,
      count: durations.length,
      p50Ms: percentile(durations, 50),
      p95Ms: percentile(durations, 95),
    };
  });

  return {
    orders: orders.length,
    byStatus,
    failureReasons,
    onTimeRate: delivered.length ? onTime.length / delivered.length : null,
    errorRate: delivered.length + failed.length ? failed.length / (delivered.length + failed.length) : null,
    stages,
  };
}

const pct = (value: number | null) => (value === null ? 'n/a' : `${(value * 100).toFixed(1)}%`);
const ms = (value: number | null) => (value === null ? 'n/a' : `${Math.round(value)} ms`);

export function formatReport(report: DemoReport): string {
  const lines = [
    '',
    '── Surgeline demo report ─────────────────────────────',
    `orders           ${report.orders}`,
    `by status        ${Object.entries(report.byStatus)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}`,
    `failure reasons  ${
      Object.entries(report.failureReasons)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ') || 'none'
    }`,
    `on-time rate     ${pct(report.onTimeRate)}   (target ≥ 95%)`,
    `error rate       ${pct(report.errorRate)}   (target < 1%)`,
    '',
    'latency per stage       count        p50        p95',
    ...report.stages.map(
      (s) =>
        `  ${s.stage.padEnd(20)} ${String(s.count).padStart(6)} ${ms(s.p50Ms).padStart(10)} ${ms(s.p95Ms).padStart(10)}`,
    ),
    '──────────────────────────────────────────────────────',
  ];
  return lines.join('\n');
}

/** One booking call, as `carrier_attempts` records it. */
export interface ReportAttempt {
  shipmentId: string;
  carrierId: string;
  outcome: string;
  id: number;
}

export interface LogisticsReport {
  /** Parcels booked by the first call to the first carrier tried. */
  firstCall: number;
  /** Booked at the first carrier tried, after it failed at least once. */
  afterRetry: number;
  /** Booked at another carrier than the first tried. */
  afterFailover: number;
  /** Orders that went on_hold (a region lockdown) at least once. */
  held: number;
}

/** How parcels got booked, and how many orders were held. Pure. */
export function logisticsReport(attempts: ReportAttempt[], events: ReportEvent[]): LogisticsReport {
  const byParcel = new Map<string, ReportAttempt[]>();
  for (const a of [...attempts].sort((x, y) => x.id - y.id)) {
    byParcel.set(a.shipmentId, [...(byParcel.get(a.shipmentId) ?? []), a]);
  }
  const report = { firstCall: 0, afterRetry: 0, afterFailover: 0, held: 0 };
  for (const calls of byParcel.values()) {
    const booked = calls.find((c) => c.outcome === 'booked');
    if (!booked) continue;
    if (booked.carrierId !== calls[0].carrierId) report.afterFailover++;
    else if (booked === calls[0]) report.firstCall++;
    else report.afterRetry++;
  }
  report.held = new Set(events.filter((e) => e.status === 'on_hold').map((e) => e.orderId)).size;
  return report;
}

export function formatLogistics(
  l: LogisticsReport,
  deadLetters: { listed: number; redriven: number },
): string {
  return [
    'logistics',
    `  booked on the first call     ${l.firstCall}`,
    `  booked after a retry         ${l.afterRetry}`,
    `  booked after failover        ${l.afterFailover}`,
    `  orders held by a lockdown    ${l.held}`,
    `  dead letters                 ${deadLetters.listed} (re-driven ${deadLetters.redriven})`,
  ].join('\n');
}

/** One parcel, as `shipments` records it. */
export interface ReportParcel {
  orderId: string;
  attempt: number;
  warehouseId: string;
}

export interface SupplyReport {
  /** Orders shipped from more than one warehouse (in one attempt). */
  split: number;
  /** Orders that waited backordered at least once… */
  backordered: number;
  /** …and of those, the ones delivered in the end. */
  backorderedDelivered: number;
}

/** Splits and backorders, from the parcels and the timelines. Pure. */
export function supplyReport(
  orders: ReportOrder[],
  events: ReportEvent[],
  parcels: ReportParcel[],
): SupplyReport {
  const warehousesOf = new Map<string, Set<string>>();
  for (const p of parcels) {
    const key = `${p.orderId}:${p.attempt}`;
    warehousesOf.set(key, (warehousesOf.get(key) ?? new Set()).add(p.warehouseId));
  }
  const splitOrders = new Set(
    [...warehousesOf].filter(([, warehouses]) => warehouses.size > 1).map(([key]) => key.split(':')[0]),
  );
  const backordered = new Set(events.filter((e) => e.status === 'backordered').map((e) => e.orderId));
  const delivered = new Set(orders.filter((o) => o.status === 'delivered').map((o) => o.id));
  return {
    split: splitOrders.size,
    backordered: backordered.size,
    backorderedDelivered: [...backordered].filter((id) => delivered.has(id)).length,
  };
}

export function formatSupply(s: SupplyReport, alerts: { warehouseId: string; sku: string }[]): string {
  const raised = alerts.map((a) => `${a.sku}@${a.warehouseId}`).join(', ');
  return [
    'supply',
    `  split orders                 ${s.split}`,
    `  backordered                  ${s.backordered} (delivered after the restock ${s.backorderedDelivered})`,
    `  stock alerts raised          ${alerts.length}${raised ? ` (${raised})` : ''}`,
  ].join('\n');
}

/** The engine's own scorecard (GET /v1/admin/kpis), as the demo prints it. */
export interface DemoScorecard {
  window: string;
  onTimeRate: number | null;
  errorRate: number | null;
  satisfaction: number | null;
  processingTimeMs: { p50: number | null; p95: number | null };
  ordersPerMinute: number;
  targets: { onTimeRate: number; errorRate: number; satisfaction: number };
  breakdown: {
    priority: Record<string, { orders: number; onTimeRate: number | null; errorRate: number | null }>;
  };
}

/** Met, missed, or nothing to measure: against a floor (at least) or a ceiling (below). */
function verdict(value: number | null, target: number, kind: 'floor' | 'ceiling'): string {
  if (value === null) return 'n/a';
  return (kind === 'floor' ? value >= target : value < target) ? 'met' : 'MISSED';
}

export function formatScorecard(k: DemoScorecard): string {
  const row = (name: string, value: number | null, target: number, kind: 'floor' | 'ceiling') =>
    `  ${name.padEnd(16)} ${pct(value).padStart(7)}   target ${kind === 'floor' ? '≥' : '<'} ${pct(target).padStart(6)}   ${verdict(value, target, kind)}`;
  return [
    `scorecard (GET /v1/admin/kpis?window=${k.window}, measured by the engine)`,
    row('on-time rate', k.onTimeRate, k.targets.onTimeRate, 'floor'),
    row('error rate', k.errorRate, k.targets.errorRate, 'ceiling'),
    row('satisfaction', k.satisfaction, k.targets.satisfaction, 'floor'),
    `  received → dispatched p50 ${ms(k.processingTimeMs.p50)}, p95 ${ms(k.processingTimeMs.p95)}; ${k.ordersPerMinute.toFixed(1)} orders/min`,
    ...Object.entries(k.breakdown.priority).map(
      ([priority, s]) =>
        `  ${priority.padEnd(16)} ${String(s.orders).padStart(5)} orders, on time ${pct(s.onTimeRate)}, errors ${pct(s.errorRate)}`,
    ),
  ].join('\n');
}
