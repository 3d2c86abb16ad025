import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { jobTelemetry, startTracing } from '../../src/telemetry.js';

describe('tracing', () => {
  it('is off, with no BullMQ telemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is unset', async () => {
    const tracing = await startTracing(loadConfig({}));
    expect(tracing.enabled).toBe(false);
    expect(tracing.telemetry).toBeUndefined();
  });

  it('reads OTEL_SERVICE_NAME (default surgeline) and refuses an endpoint that is not a URL', () => {
    expect(loadConfig({}).tracing).toEqual({ endpoint: undefined, serviceName: 'surgeline' });
    expect(loadConfig({ OTEL_SERVICE_NAME: 'edge' }).tracing.serviceName).toBe('edge');
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
  });
});

describe("BullMQ's job telemetry", () => {
  const exporter = new InMemorySpanExporter();
  beforeAll(() => {
    new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register();
  });
  afterAll(() => {
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('keeps add and process spans only', () => {
    const { tracer } = jobTelemetry();
    for (const name of ['add allocation.standard.allocate', 'process allocation.standard'])
      tracer.startSpan(name).end();
    for (const name of ['getNextJob allocation.standard', 'moveStalledJobsToWait allocation.standard'])
      tracer.startSpan(name).end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([
      'add allocation.standard.allocate',
      'process allocation.standard',
    ]);
  });

  it('records error text without the values a query quoted', () => {
    exporter.reset();
    const span = jobTelemetry().tracer.startSpan('process notification.sms');
    const failure = 'Failed query: insert into messages values ($1)\nparams: +8613800000000,Li Wei';
    span.recordException({ name: 'DrizzleQueryError', message: failure });
    span.addEvent('job failed', { 'bullmq.job.failed.reason': failure });
    span.end();
    const text = JSON.stringify(exporter.getFinishedSpans().map((s) => s.events));
    expect(text).toContain('SQL and parameters not logged');
    expect(text).not.toMatch(/8613800000000|Li Wei|insert into/);
  });
});
