import {
  advance,
  allowCall,
  breakerSettings,
  breakerView,
  recordOutcome,
  releaseProbe,
  type BreakerRecord,
  type BreakerSettings,
} from '../../src/domain/breaker.js';
import type { BreakerOp } from '../../src/integrations/carriers/breaker-store.js';

/** A small deterministic PRNG, so a failing sequence can be replayed. */
export function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The settings random breaker sequences run with: the defaults, and a breaker that moves fast. */
export const BREAKER_VARIANTS: Array<[string, BreakerSettings]> = [
  ['defaults', breakerSettings()],
  [
    'several probes, short window',
    breakerSettings({
      failureThreshold: 3,
      failureRate: 0.3,
      minimumCalls: 4,
      windowMs: 5_000,
      windowBuckets: 5,
      coolDownMs: 2_000,
      halfOpenProbes: 3,
      halfOpenSuccesses: 3,
      probeLeaseMs: 1_500,
    }),
  ],
];

/** The next step of a random sequence: mostly short gaps, some past a cool-down, and an op. */
export function nextBreakerStep(random: () => number, s: BreakerSettings, now: number) {
  const at = now + Math.floor(random() ** 3 * s.coolDownMs * 1.2);
  const pick = random();
  const op: BreakerOp =
    pick < 0.1 ? 'peek' : pick < 0.4 ? 'allow' : pick < 0.5 ? 'release' : pick < 0.78 ? 'failure' : 'success';
  return { at, op };
}

/** The pure rules' answer to one op: the record after it, and the reply a store must give. */
export function expectedStep(record: BreakerRecord, op: BreakerOp, now: number, s: BreakerSettings) {
  if (op === 'peek') {
    const reply = { ...breakerView(record, now, s), allowed: true, changes: advance(record, now, s).changes };
    return { record, reply };
  }
  const next =
    op === 'allow'
      ? allowCall(record, now, s)
      : op === 'release'
        ? releaseProbe(record, now, s)
        : recordOutcome(record, op, now, s);
  const reply = {
    state: next.record.state,
    since: next.record.since ?? null,
    allowed: (next as { allowed?: boolean }).allowed ?? true,
    changes: next.changes,
  };
  return { record: next.record, reply };
}

/** Every state and change a random sequence must have gone through for each rule to be compared. */
export const EVERY_BREAKER_TRANSITION = [
  'closed',
  'open',
  'half_open',
  'closed>open',
  'open>half_open',
  'half_open>open',
  'half_open>closed',
];
