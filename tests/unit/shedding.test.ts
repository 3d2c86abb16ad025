import { describe, expect, it } from 'vitest';
import { createIntakeGate, type GateOptions } from '../../src/api/plugins/load-shedding.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  isShed,
  nextDrain,
  retryAfterSeconds,
  RETRY_AFTER_UNMEASURED_S,
  shedPriorities,
} from '../../src/domain/shedding.js';
import { BACKLOG_CACHE_MS, cachedReader, warnSometimes } from '../../src/queues/backlog.js';

const MARKS = { standard: 5, express: 10, essential: 15 };

describe('load shedding rule', () => {
  it('sheds standard first, then express, then essential as the backlog reaches each watermark', () => {
    expect(shedPriorities(0, MARKS)).toEqual([]);
    expect(shedPriorities(4, MARKS)).toEqual([]);
    expect(shedPriorities(5, MARKS)).toEqual(['standard']);
    expect(shedPriorities(9, MARKS)).toEqual(['standard']);
    expect(shedPriorities(10, MARKS)).toEqual(['express', 'standard']);
    expect(shedPriorities(14, MARKS)).toEqual(['express', 'standard']);
    expect(shedPriorities(15, MARKS)).toEqual(['essential', 'express', 'standard']);
    expect(isShed('essential', 1_000_000, MARKS)).toBe(true);
    expect(isShed('standard', 4, MARKS)).toBe(false);
  });

  it('sheds nothing on the defaults during a demo surge of a few hundred orders', () => {
    const { shedAt } = loadConfig({});
    expect(shedAt).toEqual({ standard: 20_000, express: 50_000, essential: 100_000 });
    expect(shedPriorities(900, shedAt)).toEqual([]);
  });

  it('asks for Retry-After from how far over the watermark and the measured drain, 1–60 s', () => {
    // 8 over standard's watermark of 5 (backlog 12 → 8 jobs to go below 5), draining 4/s → 2 s.
    expect(retryAfterSeconds('standard', 12, MARKS, 4)).toBe(2);
    expect(retryAfterSeconds('standard', 5, MARKS, 100)).toBe(1);
    expect(retryAfterSeconds('standard', 10_000, MARKS, 1)).toBe(60);
    expect(retryAfterSeconds('standard', 12, MARKS, undefined)).toBe(RETRY_AFTER_UNMEASURED_S);
    expect(retryAfterSeconds('standard', 12, MARKS, 0)).toBe(RETRY_AFTER_UNMEASURED_S);
  });

  it('measures the drain only from a falling backlog, smoothed', () => {
    expect(nextDrain(undefined, { backlog: 100, at: 0 }, undefined)).toBeUndefined();
    const first = nextDrain({ backlog: 100, at: 0 }, { backlog: 90, at: 1000 }, undefined);
    expect(first).toBe(10);
    // Rising or flat: the estimate stands.
    expect(nextDrain({ backlog: 90, at: 1000 }, { backlog: 95, at: 2000 }, first)).toBe(10);
    expect(nextDrain({ backlog: 90, at: 1000 }, { backlog: 90, at: 2000 }, first)).toBe(10);
    // Falling faster: the estimate moves towards it.
    const next = nextDrain({ backlog: 90, at: 1000 }, { backlog: 60, at: 2000 }, first)!;
    expect(next).toBeGreaterThan(10);
    expect(next).toBeLessThan(30);
  });
});

describe('load shedding settings', () => {
  function configError(env: Record<string, string>): string {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).not.toContain('\n');
      return message;
    }
    throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
  }

  it('reads the watermarks and the intake ceiling', () => {
    const config = loadConfig({
      SHED_STANDARD_AT: '5',
      SHED_EXPRESS_AT: '10',
      SHED_ALL_AT: '15',
      INTAKE_MAX_PER_SECOND: '300',
    });
    expect(config.shedAt).toEqual(MARKS);
    expect(config.intakeMaxPerSecond).toBe(300);
    expect(loadConfig({}).intakeMaxPerSecond).toBeUndefined();
    expect(loadConfig({ INTAKE_MAX_PER_SECOND: '0' }).intakeMaxPerSecond).toBeUndefined();
    // Equal watermarks are allowed; raising one alone lifts the defaults above it.
    expect(loadConfig({ SHED_STANDARD_AT: '7', SHED_EXPRESS_AT: '7', SHED_ALL_AT: '7' }).shedAt).toEqual({
      standard: 7,
      express: 7,
      essential: 7,
    });
    expect(loadConfig({ SHED_STANDARD_AT: '70000' }).shedAt).toEqual({
      standard: 70_000,
      express: 70_000,
      essential: 100_000,
    });
  });

  it('refuses a watermark that is not an integer, with one line naming the variable', () => {
    expect(configError({ SHED_STANDARD_AT: 'lots' })).toMatch(/^SHED_STANDARD_AT must be an integer/);
    expect(configError({ SHED_EXPRESS_AT: '1.5' })).toMatch(/^SHED_EXPRESS_AT must be an integer/);
    expect(configError({ SHED_ALL_AT: '0' })).toMatch(/^SHED_ALL_AT must be an integer/);
    expect(configError({ INTAKE_MAX_PER_SECOND: '-1' })).toMatch(/^INTAKE_MAX_PER_SECOND must be an integer/);
    expect(configError({ INTAKE_MAX_PER_SECOND: 'fast' })).toMatch(/^INTAKE_MAX_PER_SECOND/);
  });

  it('refuses watermarks out of order (standard ≤ express ≤ all)', () => {
    expect(configError({ SHED_STANDARD_AT: '10', SHED_EXPRESS_AT: '5' })).toBe(
      'SHED_EXPRESS_AT must be at least SHED_STANDARD_AT (10), got "5"',
    );
    expect(configError({ SHED_EXPRESS_AT: '60000', SHED_ALL_AT: '50000' })).toBe(
      'SHED_ALL_AT must be at least SHED_EXPRESS_AT (60000), got "50000"',
    );
    expect(configError({ SHED_EXPRESS_AT: '10' })).toMatch(
      /^SHED_EXPRESS_AT must be at least SHED_STANDARD_AT/,
    );
  });
});

describe('backlog reading (shared by load shedding and the promise)', () => {
  it('reads at most once per cache period, one read at a time', async () => {
    const clock = { t: 0 };
    let reads = 0;
    let value = 7;
    const read = cachedReader(
      async () => {
        reads++;
        return value;
      },
      { now: () => clock.t },
    );
    const all = await Promise.all([read(), read(), read()]);
    expect(reads).toBe(1);
    expect(all.map((r) => r?.value)).toEqual([7, 7, 7]);
    value = 0;
    clock.t = BACKLOG_CACHE_MS - 1;
    expect((await read())?.value).toBe(7); // still the cached reading
    expect(reads).toBe(1);
    clock.t = BACKLOG_CACHE_MS;
    expect(await read()).toEqual({ value: 0, at: BACKLOG_CACHE_MS });
    expect(reads).toBe(2);
  });

  it('never keeps a caller waiting more than quickMs: the last reading (or none) stands in', async () => {
    const clock = { t: 0 };
    let release: (() => void) | undefined;
    let value = 1;
    const read = cachedReader(
      () =>
        new Promise<number>((resolve) => {
          const v = value;
          release = () => resolve(v);
        }),
      { now: () => clock.t, quickMs: 20 },
    );
    const started = Date.now();
    expect(await read()).toBeUndefined(); // nothing read yet
    expect(Date.now() - started).toBeLessThan(500);
    release!();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect((await read())?.value).toBe(1);
    value = 2;
    clock.t = BACKLOG_CACHE_MS;
    expect((await read())?.value).toBe(1); // the new read is slow: the last one stands in
    // Past the read's first quickMs, callers do not wait at all.
    clock.t += 20;
    const at = Date.now();
    expect((await read())?.value).toBe(1);
    expect(Date.now() - at).toBeLessThan(15);
    release!();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect((await read())?.value).toBe(2);
  });

  it('answers a failed read as no value, and warns at most once a minute', async () => {
    const clock = { t: 0 };
    const warnings: string[] = [];
    const read = cachedReader(
      async () => {
        throw new Error('Connection is closed.');
      },
      {
        now: () => clock.t,
        onError: warnSometimes(
          { warn: (_obj: unknown, message: string) => warnings.push(message) } as never,
          'cannot read',
        ),
      },
    );
    for (let i = 0; i < 10; i++) {
      clock.t += BACKLOG_CACHE_MS;
      expect((await read())?.value).toBeUndefined();
    }
    expect(warnings).toHaveLength(1);
    clock.t += 60_000;
    await read();
    expect(warnings).toHaveLength(2);
  });
});

describe('intake gate', () => {
  function gate(overrides: Partial<GateOptions> = {}) {
    const shed: string[] = [];
    const g = createIntakeGate({
      marks: MARKS,
      maxPerSecond: undefined,
      readBacklog: async () => ({ value: 0, at: 0 }),
      takeCeilingSlot: async () => 0,
      onShed: (p) => shed.push(p),
      ...overrides,
    });
    return { gate: g, shed };
  }

  it('refuses shed priorities with 503 overloaded and Retry-After', async () => {
    const { gate: g, shed } = gate({ readBacklog: async () => ({ value: 7, at: 0 }) });
    const [a, b, c] = await Promise.all([g.admit('standard'), g.admit('express'), g.admit('essential')]);
    expect(a).toMatchObject({ status: 503, code: 'overloaded' });
    expect(a!.headers!['retry-after']).toBe(String(RETRY_AFTER_UNMEASURED_S));
    expect(b).toBeUndefined();
    expect(c).toBeUndefined();
    expect(shed).toEqual(['standard']);
  });

  it('measures the drain from successive readings for Retry-After', async () => {
    const readings = [
      { value: 30, at: 0 },
      { value: 30, at: 0 }, // the same reading again: no new sample
      { value: 20, at: 1000 }, // 10 jobs taken in 1 s
    ];
    const { gate: g } = gate({ readBacklog: async () => readings.shift() });
    await g.admit('standard');
    await g.admit('standard');
    const refused = await g.admit('standard');
    // 20 − 5 + 1 = 16 jobs to go below standard's watermark at 10/s → 2 s.
    expect(refused!.headers!['retry-after']).toBe('2');
  });

  it('takes orders when the backlog is not known', async () => {
    const { gate: g } = gate({ readBacklog: async () => undefined });
    expect(await g.admit('standard')).toBeUndefined();
    const { gate: failed } = gate({ readBacklog: async () => ({ value: undefined, at: 0 }) });
    expect(await failed.admit('standard')).toBeUndefined();
  });

  it('answers 429 rate_limited over the ceiling; essential is let through but still counted', async () => {
    const calls: [number, boolean][] = [];
    const { gate: g } = gate({
      maxPerSecond: 3,
      takeCeilingSlot: async (max, always) => {
        calls.push([max, always]);
        return always ? 0 : 400;
      },
    });
    const refused = await g.admit('standard');
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(refused!.headers!['retry-after']).toBe('1');
    expect(await g.admit('essential')).toBeUndefined();
    expect(calls).toEqual([
      [3, false],
      [3, true],
    ]);
  });

  it('asks the ceiling nothing for a shed order', async () => {
    let taken = 0;
    const { gate: g } = gate({
      maxPerSecond: 3,
      readBacklog: async () => ({ value: 20, at: 0 }),
      takeCeilingSlot: async () => {
        taken++;
        return 0;
      },
    });
    expect(await g.admit('essential')).toMatchObject({ status: 503, code: 'overloaded' });
    expect(taken).toBe(0);
  });
});
