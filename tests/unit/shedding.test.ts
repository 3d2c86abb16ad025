import { describe, expect, it } from 'vitest';
import { createIntakeGate, BACKLOG_CACHE_MS, type GateOptions } from '../../src/api/plugins/load-shedding.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  isShed,
  nextDrain,
  retryAfterSeconds,
  RETRY_AFTER_UNMEASURED_S,
  shedPriorities,
} from '../../src/domain/shedding.js';

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

describe('intake gate', () => {
  function gate(overrides: Partial<GateOptions> & { clock?: { t: number } } = {}) {
    const clock = overrides.clock ?? { t: 0 };
    const warnings: string[] = [];
    const shed: string[] = [];
    let reads = 0;
    const g = createIntakeGate({
      marks: MARKS,
      maxPerSecond: undefined,
      readBacklog: async () => {
        reads++;
        return 0;
      },
      takeCeilingSlot: async () => 0,
      log: {
        warn: (_obj: unknown, message: string) => warnings.push(message),
      } as unknown as GateOptions['log'],
      onShed: (p) => shed.push(p),
      now: () => clock.t,
      ...overrides,
    });
    return { gate: g, warnings, shed, clock, reads: () => reads };
  }

  it('reads the backlog at most once per cache period, and refuses shed priorities with 503 overloaded', async () => {
    let backlog = 7;
    let reads = 0;
    const clock = { t: 0 };
    const { gate: g, shed } = gate({
      clock,
      readBacklog: async () => {
        reads++;
        return backlog;
      },
    });
    const [a, b, c] = await Promise.all([g.admit('standard'), g.admit('express'), g.admit('essential')]);
    expect(reads).toBe(1);
    expect(a).toMatchObject({ status: 503, code: 'overloaded' });
    expect(a!.headers!['retry-after']).toMatch(/^\d+$/);
    expect(b).toBeUndefined();
    expect(c).toBeUndefined();
    expect(shed).toEqual(['standard']);

    backlog = 0;
    clock.t = BACKLOG_CACHE_MS - 1;
    expect(await g.admit('standard')).toBeDefined(); // still the cached reading
    expect(reads).toBe(1);
    clock.t = BACKLOG_CACHE_MS;
    expect(await g.admit('standard')).toBeUndefined();
    expect(reads).toBe(2);
  });

  it('takes orders when the backlog cannot be read, warning at most once a minute', async () => {
    const clock = { t: 0 };
    const { gate: g, warnings } = gate({
      clock,
      readBacklog: async () => {
        throw new Error('Connection is closed.');
      },
    });
    for (let i = 0; i < 10; i++) {
      clock.t += BACKLOG_CACHE_MS;
      expect(await g.admit('standard')).toBeUndefined();
    }
    expect(warnings).toHaveLength(1);
    clock.t += 60_000;
    expect(await g.admit('standard')).toBeUndefined();
    expect(warnings).toHaveLength(2);
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
      readBacklog: async () => 20,
      takeCeilingSlot: async () => {
        taken++;
        return 0;
      },
    });
    expect(await g.admit('essential')).toMatchObject({ status: 503, code: 'overloaded' });
    expect(taken).toBe(0);
  });
});
