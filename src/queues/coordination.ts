import type { BreakerSettings } from '../domain/breaker.js';
import type { BreakerOp, BreakerReply } from '../integrations/carriers/breaker-store.js';

/** Settings of either store; tests shorten them. */
export interface CoordinationOptions {
  /** How long an empty lane keeps its fair-queueing tags after its last tag (queues/fair.ts). */
  fairResetGraceMs?: number;
}

/**
 * What the engine shares between its processes outside the records: rate-limit logs, carrier
 * breakers, pass locks, fair-queueing tags, small flags and sets, and change announcements. On
 * Redis by default (queues/redis-coordination.ts); with QUEUE_BACKEND=postgres in PostgreSQL,
 * beside the records (db/coordination.ts), so an operator who runs only PostgreSQL needs nothing
 * else. Keys are full names under QUEUE_PREFIX. Times are the store's clock, so every process
 * agrees. Both implementations are run on the same sequences by tests/integration/coordination.test.ts.
 */
export interface Coordination {
  readonly backend: 'redis' | 'postgres';
  /** Whether a command sent now would be sent at once (false while the store is away). */
  connected(): boolean;
  ping(): Promise<void>;

  /**
   * Sliding log: a call is accepted only while fewer than `max` were accepted in the last
   * `windowMs`. Returns the count with this call (max + 1 when refused) and the ms until the
   * oldest accepted call leaves the window. `always`: recorded (and accepted) even over `max`.
   */
  slidingLog(
    key: string,
    windowMs: number,
    max: number,
    always?: boolean,
  ): Promise<{ count: number; resetMs: number }>;
  /** The ms until key's log would accept a call (0: now), without taking the slot. */
  roomIn(key: string, windowMs: number, max: number): Promise<number>;

  /** One atomic step of a carrier's breaker (domain/breaker.ts); `now` only for tests. */
  breaker(key: string, op: BreakerOp, settings: BreakerSettings, now?: number): Promise<BreakerReply>;

  /** Sets key to value for ttlMs unless it holds a live value: true when it was set. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** While key holds `token`: keeps it ttlMs longer, or deletes it when ttlMs is 0. */
  extendIfHeld(key: string, token: string, ttlMs: number): Promise<void>;
  get(key: string): Promise<string | null>;
  /** Sets key; without ttlMs it never expires. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Reads and deletes key in one step. */
  take(key: string): Promise<string | null>;
  del(key: string): Promise<void>;

  /** A set of strings under key. */
  addMember(key: string, member: string): Promise<void>;
  members(key: string): Promise<string[]>;
  removeMember(key: string, member: string): Promise<void>;

  /** Announces `message` to every process subscribed to `channel` (best effort). */
  publish(channel: string, message: string): Promise<void>;
  /** `ready` runs whenever the subscription (re)starts: announcements may have been missed. */
  subscribe(channel: string, handlers: { message(message: string): void; ready?(): void }): Subscription;

  /**
   * Start-time fair queueing within a lane (queues/fair.ts): the tags (BullMQ priorities) of jobs
   * joining `lane` for these shops, in order.
   */
  fairTags(lane: string, shops: string[]): Promise<number[]>;
  /**
   * A worker took a job of `lane` with this tag: the frontier moves up to it, or the lane's tags
   * start again when it holds no job waiting and none was tagged within the grace (`laneIsEmpty`
   * for a store that cannot tell itself).
   */
  fairTake(lane: string, tag: number, laneIsEmpty: () => Promise<boolean>): Promise<void>;

  close(): Promise<void>;
}

export interface Subscription {
  close(): void;
}
