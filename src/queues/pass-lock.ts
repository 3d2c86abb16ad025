import { randomUUID } from 'node:crypto';
import type { Coordination } from './coordination.js';

export interface PassLock {
  /** Pushes the lock's expiry out by its full length again (after each page of a long pass). */
  extend(): Promise<void>;
  /** Lets go, or keeps the lock `keepMs` longer (so one pass per tick runs across processes). */
  release(keepMs?: number): Promise<void>;
}

/**
 * A lock held by one process at a time for a periodic pass (lockdown resumes, backorders, the
 * reconciler): a key with an owner token and an expiry, so a process that dies mid-pass frees it
 * by itself. Null when another process holds it.
 */
export async function takePassLock(coord: Coordination, key: string, ms: number): Promise<PassLock | null> {
  const token = randomUUID();
  if (!(await coord.setIfAbsent(key, token, ms))) return null;
  return {
    async extend() {
      await coord.extendIfHeld(key, token, ms);
    },
    async release(keepMs = 0) {
      await coord.extendIfHeld(key, token, Math.max(keepMs, 0)).catch(() => undefined);
    },
  };
}
