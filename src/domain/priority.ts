export const PRIORITIES = ['essential', 'express', 'standard'] as const;
export type Priority = (typeof PRIORITIES)[number];

/**
 * BullMQ priority for a class (1 is taken first). Every job gets one: BullMQ takes a job
 * without a priority before every prioritised job.
 */
export function jobPriority(priority: Priority): number {
  return PRIORITIES.indexOf(priority) + 1;
}
