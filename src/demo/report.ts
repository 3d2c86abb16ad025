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
    `error rate       ${pct(report.errorRate)}   (target < 1%; out_of_stock is by design in this demo)`,
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
