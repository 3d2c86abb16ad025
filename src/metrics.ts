import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Context } from './context.js';
import { allCarriers } from './db/carriers.js';
import { countOverdue } from './db/shipments.js';
import { alertsBySku } from './db/stock-alerts.js';
import { QUEUE_NAMES } from './queues/topology.js';
import type { Rates } from './domain/kpis.js';
import { forecastOf } from './steps/forecast.js';
import { scorecardRates } from './steps/scorecard.js';

const PROCESS_PREFIX = 'surgeline_process_';
const JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed'] as const;

/** One registry per process; gauges are read when Prometheus scrapes, counters as things happen. */
export function createMetrics(ctx: Pick<Context, 'queues' | 'db' | 'log' | 'config' | 'breakers'>) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PROCESS_PREFIX });
  // prom-client's three `*_total` gauges break Prometheus' naming rule (`_total` is for counters;
  // `promtool check metrics` says so); their per-type gauges (`…_active_handles{type}`, …) stay and
  // sum to the same.
  for (const kind of ['handles', 'requests', 'resources'])
    registry.removeSingleMetric(`${PROCESS_PREFIX}nodejs_active_${kind}_total`);

  const httpRequests = new Counter({
    name: 'surgeline_http_requests_total',
    help: 'HTTP requests answered',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'surgeline_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: 'surgeline_job_duration_seconds',
    help: 'Time a job spent being processed',
    labelNames: ['queue'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  new Gauge({
    name: 'surgeline_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      // Redis is away: BullMQ would wait for it to come back, so the scrape leaves the gauge empty instead of hanging.
      if (!ctx.queues.backend.connected()) return;
      // A stage split into queues (notification: one per channel) counts as the stage, summed.
      for (const name of QUEUE_NAMES) {
        try {
          const all = await Promise.all(ctx.queues.queuesOf(name).map((q) => q.getJobCounts(...JOB_STATES)));
          for (const state of JOB_STATES) {
            this.set(
              { queue: name, state },
              all.reduce((sum, counts) => sum + (counts[state] ?? 0), 0),
            );
          }
        } catch {
          // Redis is away: the gauge is left empty rather than failing the scrape.
        }
      }
      // Booking calls wait in one queue per carrier; they count as the dispatch stage's.
      try {
        for (const carrier of await allCarriers(ctx.db)) {
          const counts = await ctx.queues.carrierQueue(carrier.id).getJobCounts(...JOB_STATES);
          for (const state of JOB_STATES) this.inc({ queue: 'dispatch', state }, counts[state] ?? 0);
        }
      } catch {
        // The database or Redis is away: the stage queues' counts stand alone.
      }
    },
  });
  // A counter of status changes, not a GROUP BY over every order at each scrape: each process
  // counts the moves it committed; `sum by (status)` across replicas gives the engine's.
  const ordersTotal = new Counter({
    name: 'surgeline_orders_total',
    help: 'Orders that entered each status (counted by the process that committed the change)',
    labelNames: ['status'],
    registers: [registry],
  });
  const ordersShed = new Counter({
    name: 'surgeline_orders_shed_total',
    help: 'Orders refused 503 overloaded by load shedding (SHED_*_AT), per priority',
    labelNames: ['priority'],
    registers: [registry],
  });
  const intakeBatchOrders = new Histogram({
    name: 'surgeline_intake_batch_orders',
    help: 'Orders per group-committed intake batch (INTAKE_BATCH_MS / INTAKE_BATCH_SIZE)',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers: [registry],
  });
  new Gauge({
    name: 'surgeline_shipments_overdue',
    help: 'Parcels not yet delivered whose expected carrier event is past due (plus OVERDUE_GRACE_HOURS)',
    registers: [registry],
    async collect() {
      try {
        this.set(await countOverdue(ctx.db, ctx.config.overdueGraceHours, new Date()));
      } catch (error) {
        this.reset();
        ctx.log.warn({ err: error }, 'overdue gauge: database unavailable');
      }
    },
  });
  // The forecast (GET /v1/admin/forecast, 60-minute horizon) for an autoscaler, read at scrape and
  // computed at most every 30 s (one intake read, one Redis sample per queue) for both gauges; the
  // database away: both gauges are left empty rather than failing the scrape.
  const forecastNow = cached(30_000, () => forecastOf(ctx));
  new Gauge({
    name: 'surgeline_forecast_orders_per_minute',
    help: 'Orders expected in the next minute (the first point of GET /v1/admin/forecast)',
    registers: [registry],
    async collect() {
      try {
        const { points } = await forecastNow();
        this.set(points[0]?.expected ?? 0);
      } catch (error) {
        // prom-client's reset() leaves an unlabelled gauge at 0, which would read as "no orders
        // expected": drop the sample instead, so the scrape shows the gauge with no value.
        (this as unknown as { hashMap: Record<string, unknown> }).hashMap = {};
        ctx.log.warn({ err: error }, 'forecast gauges: database unavailable');
      }
    },
  });
  new Gauge({
    name: 'surgeline_recommended_replicas',
    help: 'Worker replicas each queue needs for the peak of the next 60 minutes forecast, with headroom',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const { recommendedReplicas } = await forecastNow();
        for (const [queue, n] of Object.entries(recommendedReplicas)) this.set({ queue }, n);
      } catch {
        // Logged once by the gauge above.
      }
    },
  });
  const BREAKER_LEVELS = { closed: 0, half_open: 1, open: 2 } as const;
  new Gauge({
    name: 'surgeline_carrier_breaker_state',
    help: "Each carrier's circuit breaker, shared by every process: 0 closed, 1 half_open, 2 open",
    labelNames: ['carrier'],
    registers: [registry],
    async collect() {
      this.reset();
      // Redis (or the database) away: the gauge is left empty rather than failing the scrape.
      if (!ctx.queues.backend.connected()) return;
      try {
        const ids = (await allCarriers(ctx.db)).map((c) => c.id);
        const states = await ctx.breakers.states(ids);
        for (const id of ids) this.set({ carrier: id }, BREAKER_LEVELS[states[id].state]);
      } catch {
        this.reset();
      }
    },
  });
  new Gauge({
    name: 'surgeline_stock_at_risk',
    help: 'Stock rows at risk of running out (GET /v1/admin/inventory/alerts), per SKU',
    labelNames: ['sku'],
    registers: [registry],
    async collect() {
      try {
        const rows = await alertsBySku(ctx.db);
        this.reset();
        for (const r of rows) this.set({ sku: r.sku }, r.alerts);
      } catch (error) {
        this.reset();
        ctx.log.warn({ err: error }, 'stock-at-risk gauge: database unavailable');
      }
    },
  });
  // The scorecard's rates over 24 h, read at scrape, one query for the three gauges every 10 s at
  // most (a scrape storm doesn't hammer the database); the database away: the gauges are left empty.
  const kpiRates = cached(KPI_CACHE_MS, () => scorecardRates(ctx, '24h'));
  const kpiGauge = (name: string, help: string, rate: keyof Rates) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.reset();
        try {
          const value = (await kpiRates())[rate];
          if (value !== null) this.set(value);
        } catch (error) {
          ctx.log.warn({ err: error }, 'kpi gauges: database unavailable');
        }
      },
    });
  kpiGauge(
    'surgeline_kpi_on_time_rate',
    'Delivered on time (≤ initial promise) ÷ delivered, orders closed in the last 24 h',
    'onTimeRate',
  );
  kpiGauge(
    'surgeline_kpi_error_rate',
    'Failed ÷ closed (delivered + failed), orders closed in the last 24 h',
    'errorRate',
  );
  kpiGauge(
    'surgeline_kpi_satisfaction',
    'Feedback scores ≥ 4 ÷ all scores, orders closed in the last 24 h',
    'satisfaction',
  );
  return { registry, httpRequests, httpDuration, jobDuration, ordersTotal, ordersShed, intakeBatchOrders };
}

const KPI_CACHE_MS = 10_000;

/** `load`'s answer (or failure), reused for `ms`; concurrent callers share one call. */
function cached<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!last || Date.now() - last.at >= ms) last = { at: Date.now(), value: load() };
    return last.value;
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
