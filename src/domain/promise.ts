import { eligibleCarriers, type CarrierCandidate } from './carrier-choice.js';

const HOUR = 3_600_000;

/**
 * Transit time to promise for a region: the first carrier that would be tried, or the
 * default when it does not say (or when no carrier serves the region yet).
 */
export function transitHoursFor(carriers: CarrierCandidate[], region: string, defaultHours: number): number {
  const first = eligibleCarriers(carriers, region)[0];
  return first?.transitHours ?? defaultHours;
}

/** The delivery promise given at intake. */
export function promiseAt(receivedAt: Date, transitHours: number): Date {
  return new Date(receivedAt.getTime() + transitHours * HOUR);
}
