import { breakerSettings, type BreakerSettings } from '../../src/domain/breaker.js';
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
