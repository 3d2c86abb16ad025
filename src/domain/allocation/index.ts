import { nearestFirst } from './nearest-first.js';
import type { AllocationStrategy } from './strategy.js';

/** Every allocation strategy by name, as ALLOCATION_STRATEGY names them. Another is one new file here. */
export const STRATEGIES: Readonly<Record<string, AllocationStrategy>> = Object.freeze({
  'nearest-first': nearestFirst,
});

/** The strategy ALLOCATION_STRATEGY names; throws for a name not in STRATEGIES. */
export function strategyNamed(name: string): AllocationStrategy {
  const strategy = Object.hasOwn(STRATEGIES, name) ? STRATEGIES[name] : undefined;
  if (!strategy) {
    throw new Error(`unknown allocation strategy "${name}" (known: ${Object.keys(STRATEGIES).join(', ')})`);
  }
  return strategy;
}
