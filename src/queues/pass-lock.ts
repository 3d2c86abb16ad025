import { randomUUID } from 'node:crypto';
import type { RedisClient } from './connection.js';

const EXTEND_OR_RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[2]) > 0 then return redis.call('pexpire', KEYS[1], ARGV[2]) end
  return redis.call('del', KEYS[1])
end
return 0`;

export interface PassLock {
  /** Pushes the lock's expiry out by its full length again (after each page of a long pass). */
  extend(): Promise<void>;
  /** Lets go, or keeps the lock `keepMs` longer (so one pass per tick runs across processes). */
  release(keepMs?: number): Promise<void>;
}

/**
 * A lock held by one process at a time for a periodic pass (lockdown resumes, backorders): a Redis
 * key with an owner token and an expiry, so a process that dies mid-pass frees it by itself.
 * Null when another process holds it.
 */
export async function takePassLock(redis: RedisClient, key: string, ms: number): Promise<PassLock | null> {
  const token = randomUUID();
  if ((await redis.set(key, token, 'PX', ms, 'NX')) !== 'OK') return null;
  return {
    async extend() {
      await redis.eval(EXTEND_OR_RELEASE, 1, key, token, String(ms));
    },
    async release(keepMs = 0) {
      await redis.eval(EXTEND_OR_RELEASE, 1, key, token, String(Math.max(keepMs, 0))).catch(() => undefined);
    },
  };
}
