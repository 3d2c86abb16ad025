import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BREAKER_SETTINGS,
  allowCall,
  breakerSettings,
  breakerView,
  initialBreaker,
  recordOutcome,
  releaseProbe,
  type BreakerChange,
  type BreakerOutcome,
  type BreakerRecord,
  type BreakerSettings,
} from '../../src/domain/breaker.js';
import { ConfigError, loadConfig } from '../../src/config.js';

const T0 = Date.UTC(2026, 0, 31, 8, 0, 0); // a multiple of every bucket size used here
const s = breakerSettings();

/** Applies outcomes at the given times (ms after T0), collecting every state change. */
function play(
  steps: Array<[number, BreakerOutcome]>,
  settings: BreakerSettings = s,
  start = initialBreaker(),
) {
  let record: BreakerRecord = start;
  const changes: Array<BreakerChange & { at: number }> = [];
  for (const [at, outcome] of steps) {
    const step = recordOutcome(record, outcome, T0 + at, settings);
    record = step.record;
    changes.push(...step.changes.map((c) => ({ ...c, at })));
  }
  return { record, changes };
}

const failures = (n: number, from = 0, every = 100): Array<[number, BreakerOutcome]> =>
  Array.from({ length: n }, (_, i) => [from + i * every, 'failure']);

function opened(at = 0): BreakerRecord {
  return play(failures(5, at)).record;
}

describe('breaker settings', () => {
  it('defaults: 5 in a row, 50% of at least 10 calls in 30 s, 15 s cool-down, 1 probe at a time, 2 to close', () => {
    expect(DEFAULT_BREAKER_SETTINGS).toMatchObject({
      failureThreshold: 5,
      failureRate: 0.5,
      minimumCalls: 10,
      windowMs: 30_000,
      coolDownMs: 15_000,
      halfOpenProbes: 1,
      halfOpenSuccesses: 2,
      idleTtlMs: 86_400_000,
    });
    expect(breakerSettings({ coolDownMs: 100, failureThreshold: undefined })).toMatchObject({
      coolDownMs: 100,
      failureThreshold: 5,
    });
  });

  it('refuses values that make no sense', () => {
    expect(() => breakerSettings({ failureThreshold: 0 })).toThrow(RangeError);
    expect(() => breakerSettings({ failureRate: 0 })).toThrow(/failureRate/);
    expect(() => breakerSettings({ failureRate: 1.5 })).toThrow(/failureRate/);
    expect(() => breakerSettings({ windowMs: 2.5 })).toThrow(/windowMs/);
    expect(() => breakerSettings({ windowMs: 5, windowBuckets: 10 })).toThrow(/windowBuckets/);
  });
});

describe('BREAKER_* configuration', () => {
  it('defaults to the rules above, and reads each variable', () => {
    const { breaker } = loadConfig({});
    expect(breakerSettings(breaker)).toEqual(DEFAULT_BREAKER_SETTINGS);
    expect(
      loadConfig({
        BREAKER_FAILURE_THRESHOLD: '3',
        BREAKER_FAILURE_RATE_PERCENT: '25',
        BREAKER_MINIMUM_CALLS: '20',
        BREAKER_WINDOW_MS: '60000',
        BREAKER_COOL_DOWN_MS: '5000',
        BREAKER_HALF_OPEN_PROBES: '2',
        BREAKER_HALF_OPEN_SUCCESSES: '4',
      }).breaker,
    ).toEqual({
      failureThreshold: 3,
      failureRate: 0.25,
      minimumCalls: 20,
      windowMs: 60_000,
      coolDownMs: 5_000,
      halfOpenProbes: 2,
      halfOpenSuccesses: 4,
    });
  });

  it('refuses a bad value with one line naming the variable', () => {
    for (const [name, value] of [
      ['BREAKER_FAILURE_THRESHOLD', '0'],
      ['BREAKER_FAILURE_RATE_PERCENT', '101'],
      ['BREAKER_MINIMUM_CALLS', 'ten'],
      ['BREAKER_WINDOW_MS', '999'],
      ['BREAKER_COOL_DOWN_MS', '1.5'],
      ['BREAKER_HALF_OPEN_PROBES', '0'],
      ['BREAKER_HALF_OPEN_SUCCESSES', '-1'],
    ]) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name} `));
    }
  });
});

describe('closed breaker', () => {
  it('starts closed, never changed, and lets every call through', () => {
    expect(breakerView(initialBreaker(), T0, s)).toEqual({ state: 'closed', since: null });
    expect(allowCall(initialBreaker(), T0, s)).toMatchObject({ allowed: true, changes: [] });
  });

  it('opens on the 5th failure in a row, with since = that failure', () => {
    const four = play(failures(4));
    expect(four.record.state).toBe('closed');
    expect(four.record.streak).toBe(4);
    const five = play(failures(5));
    expect(five.changes).toEqual([{ from: 'closed', to: 'open', at: 400 }]);
    expect(breakerView(five.record, T0 + 400, s)).toEqual({ state: 'open', since: T0 + 400 });
    expect(allowCall(five.record, T0 + 500, s).allowed).toBe(false);
  });

  it('a success breaks the run of failures', () => {
    const { record, changes } = play([...failures(4), [400, 'success'], ...failures(4, 500)]);
    expect(changes).toEqual([]);
    expect(record).toMatchObject({ state: 'closed', streak: 4 });
  });

  it('opens on a failure rate of 50% once 10 calls are in the window, not before', () => {
    // F S F S … : never 5 in a row; the 10th call makes 5 of 10.
    const alternating = Array.from(
      { length: 10 },
      (_, i) => [i * 1000, i % 2 ? 'success' : 'failure'] as [number, BreakerOutcome],
    );
    expect(play(alternating.slice(0, 9)).record.state).toBe('closed'); // 5 of 9, but only 9 calls
    const ten = play(alternating.slice(0, 10));
    expect(ten.changes).toEqual([{ from: 'closed', to: 'open', at: 9000 }]);
  });

  it('stays closed below the rate: 4 of 10 failed', () => {
    const steps: Array<[number, BreakerOutcome]> = Array.from({ length: 10 }, (_, i) => [
      i * 1000,
      i < 4 ? 'failure' : 'success',
    ]);
    expect(play(steps).record.state).toBe('closed');
  });

  it('the window slides: failures older than 30 s no longer count', () => {
    // 4 failures, then successes far apart: the early failures leave the window before the 10th call.
    const steps: Array<[number, BreakerOutcome]> = [
      ...failures(4, 0, 1000),
      [3500, 'success'],
      ...failures(4, 4000, 1000), // 8 failures in 9 calls, not 5 in a row
      [40_000, 'success'], // the first 9 calls are over 30 s old
    ];
    const { record, changes } = play(steps);
    expect(changes).toEqual([]);
    expect(record.window.reduce((n, b) => n + b.n, 0)).toBe(1);
    // The same 10th call 10 s after the first: 8 of 10 failed → open.
    const soon = play([...steps.slice(0, 9), [10_000, 'success']]);
    expect(soon.changes).toEqual([{ from: 'closed', to: 'open', at: 10_000 }]);
  });

  it('keeps at most windowBuckets buckets whatever the call rate', () => {
    const steps: Array<[number, BreakerOutcome]> = Array.from({ length: 500 }, (_, i) => [
      i * 200,
      'success',
    ]);
    expect(play(steps).record.window.length).toBeLessThanOrEqual(s.windowBuckets);
  });
});

describe('open and half_open breaker', () => {
  it('reads half_open once the cool-down has passed, since = opened + cool-down', () => {
    const r = opened(); // opened at T0 + 400
    expect(breakerView(r, T0 + 400 + 14_999, s)).toEqual({ state: 'open', since: T0 + 400 });
    expect(breakerView(r, T0 + 400 + 15_000, s)).toEqual({ state: 'half_open', since: T0 + 15_400 });
    expect(breakerView(r, T0 + 400 + 60_000, s)).toEqual({ state: 'half_open', since: T0 + 15_400 });
  });

  it('ignores outcomes recorded while open (calls in flight when it opened)', () => {
    const r = opened();
    const late = play(
      [
        [1000, 'success'],
        [1100, 'failure'],
      ],
      s,
      r,
    );
    expect(late.changes).toEqual([]);
    expect(late.record).toEqual(r);
  });

  it('admits one probe at a time; a second waits until the first reports', () => {
    const at = T0 + 20_000;
    const first = allowCall(opened(), at, s);
    expect(first).toMatchObject({ allowed: true, changes: [{ from: 'open', to: 'half_open' }] });
    expect(first.record).toMatchObject({ state: 'half_open', probes: 1, since: T0 + 15_400 });
    const second = allowCall(first.record, at + 1, s);
    expect(second.allowed).toBe(false);
    const reported = recordOutcome(second.record, 'success', at + 2, s);
    expect(reported.record).toMatchObject({ state: 'half_open', probes: 0, okProbes: 1 });
    expect(allowCall(reported.record, at + 3, s).allowed).toBe(true);
  });

  it('gives a probe place back when no call followed, without counting it as a verdict', () => {
    const at = T0 + 20_000;
    const taken = allowCall(opened(), at, s);
    expect(allowCall(taken.record, at + 1, s).allowed).toBe(false);
    const released = releaseProbe(taken.record, at + 2, s);
    expect(released.record).toMatchObject({ state: 'half_open', probes: 0, okProbes: 0 });
    expect(allowCall(released.record, at + 3, s).allowed).toBe(true);
    // Nothing to give back: closed, or no probe out.
    expect(releaseProbe(initialBreaker(), at, s).record).toEqual(initialBreaker());
    expect(releaseProbe(released.record, at + 4, s).record).toEqual(released.record);
  });

  it('closes after 2 successful probes, since = the second', () => {
    const at = T0 + 20_000;
    let r = allowCall(opened(), at, s).record;
    r = recordOutcome(r, 'success', at + 100, s).record;
    r = allowCall(r, at + 200, s).record;
    const closed = recordOutcome(r, 'success', at + 300, s);
    expect(closed.changes).toEqual([{ from: 'half_open', to: 'closed' }]);
    expect(closed.record).toEqual({
      state: 'closed',
      since: at + 300,
      streak: 0,
      window: [],
      probes: 0,
      okProbes: 0,
    });
    // Fresh counters: it takes 5 new failures in a row to open it again.
    expect(play(failures(4, 21_000), s, closed.record).record.state).toBe('closed');
  });

  it('a failed probe re-opens it, since = the failure, and the cool-down starts again', () => {
    const at = T0 + 20_000;
    const probe = allowCall(opened(), at, s).record;
    const failed = recordOutcome(probe, 'failure', at + 500, s);
    expect(failed.changes).toEqual([{ from: 'half_open', to: 'open' }]);
    expect(breakerView(failed.record, at + 500 + 14_999, s)).toEqual({ state: 'open', since: at + 500 });
    expect(breakerView(failed.record, at + 500 + 15_000, s).state).toBe('half_open');
  });

  it('an outcome after the cool-down, without a granted probe, counts as the probe (both changes reported)', () => {
    const failed = recordOutcome(opened(), 'failure', T0 + 30_000, s);
    expect(failed.changes).toEqual([
      { from: 'open', to: 'half_open' },
      { from: 'half_open', to: 'open' },
    ]);
    expect(failed.record.since).toBe(T0 + 30_000);
  });

  it('a probe that never reports frees its place after the lease', () => {
    const at = T0 + 20_000;
    const probe = allowCall(opened(), at, s).record;
    expect(allowCall(probe, at + s.probeLeaseMs - 1, s).allowed).toBe(false);
    const again = allowCall(probe, at + s.probeLeaseMs, s);
    expect(again.allowed).toBe(true);
    expect(again.changes).toEqual([]); // not a state change
    expect(again.record.since).toBe(T0 + 15_400);
  });

  it('admits halfOpenProbes probes at once when configured', () => {
    const three = breakerSettings({ halfOpenProbes: 3, halfOpenSuccesses: 3 });
    let r = play(failures(5), three).record;
    const granted: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const step = allowCall(r, T0 + 20_000 + i, three);
      granted.push(step.allowed);
      r = step.record;
    }
    expect(granted).toEqual([true, true, true, false, false]);
    for (let i = 0; i < 2; i++) r = recordOutcome(r, 'success', T0 + 21_000 + i, three).record;
    expect(r).toMatchObject({ state: 'half_open', probes: 1, okProbes: 2 });
    expect(recordOutcome(r, 'success', T0 + 22_000, three).record.state).toBe('closed');
  });
});
