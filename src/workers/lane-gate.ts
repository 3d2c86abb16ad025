import { ShareLedger, type MinShares } from '../domain/lanes.js';
import { PRIORITIES, type Priority } from '../domain/priority.js';

/** How long an idle gate gathers arriving work before its first admission. */
export const GATHER_MS = 20;
/** How long a slot kept for a lane's next job waits for it before going to another lane. */
export const RESERVE_MS = 250;

/**
 * The slots of one stage in one process, shared by the stage's lanes. Each lane's worker hands
 * the jobs it took to `run`; a slot goes to the lane the ShareLedger picks (highest class first,
 * each lower class kept at its minimum share) among the lanes with work: jobs waiting here, or —
 * since its worker last brought one and has not found its queue empty since — more in Redis. A
 * slot picked for a lane whose next job is still on its way from Redis is kept for it (up to
 * RESERVE_MS), so that a lower class's job waiting here does not overtake a higher class's
 * backlog just because that backlog is one round trip further away.
 *
 * `pace`, for booking calls: a slot is handed on only once the carrier's rate allows another
 * call (answering the ms to wait, 0 when a call may go), so the rate limit — not the slots — is
 * what the lanes share, and the shares are of the calls the carrier takes.
 */
export class LaneGate {
  private running = 0;
  private readonly waiting: Record<Priority, (() => void)[]> = { essential: [], express: [], standard: [] };
  /** Lanes whose worker last brought a job and has not found the queue empty since. */
  private readonly backlogged = new Set<Priority>();
  private readonly ledger: ShareLedger;
  private pumping = false;
  private open = true;
  private gathering = false;
  private unheard = new Set<Priority>();
  /** The lane a slot is kept for, until its next job arrives or RESERVE_MS passes. */
  private reserved: { lane: Priority; timer: NodeJS.Timeout } | null = null;
  /** Admissions per class since start, for tests and logs. */
  readonly admitted: Record<Priority, number> = { essential: 0, express: 0, standard: 0 };

  constructor(
    private readonly slots: number,
    minShares: MinShares,
    private readonly pace?: () => Promise<number>,
  ) {
    this.ledger = new ShareLedger(minShares);
  }

  /**
   * Admits nothing until every lane has been heard from — it brought work, or its worker found it
   * empty (`laneEmpty`) — or `timeoutMs` passed, so that work already waiting in several lanes
   * when the workers start competes by class from the first slot on, rather than the lane whose
   * worker connected first taking it.
   */
  holdUntilHeard(timeoutMs: number): void {
    this.open = false;
    this.unheard = new Set(PRIORITIES);
    setTimeout(() => this.openUp(), timeoutMs).unref();
  }

  /**
   * The lane's worker took a job from Redis (BullMQ's `active`, emitted before it looks for the
   * next one): its queue may hold more, until the worker says it found it empty.
   */
  laneTook(lane: Priority): void {
    this.backlogged.add(lane);
  }

  /** The lane's worker found its queue empty (BullMQ's `drained`). */
  laneEmpty(lane: Priority): void {
    this.backlogged.delete(lane);
    this.heard(lane);
    if (this.reserved?.lane === lane) this.release();
    this.pump();
  }

  private heard(lane: Priority): void {
    if (this.open) return;
    this.unheard.delete(lane);
    if (this.unheard.size === 0) this.openUp();
  }

  private openUp(): void {
    if (this.open) return;
    this.open = true;
    this.pump();
  }

  async run<T>(lane: Priority, work: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => {
      this.waiting[lane].push(resolve);
      this.heard(lane);
      if (this.running === 0 && !this.gathering && this.open) {
        // The stage was idle: work arriving together (a burst, resumed orders) lands in several
        // lanes a few ms apart; gathering it for a moment lets it compete by class.
        this.gathering = true;
        setTimeout(() => {
          this.gathering = false;
          this.pump();
        }, GATHER_MS);
      }
      this.pump();
    });
    try {
      return await work();
    } finally {
      this.running--;
      this.pump();
    }
  }

  /** Per lane, whether it has work: jobs waiting here, or more in Redis. */
  private demand(): Record<Priority, number> {
    return Object.fromEntries(
      PRIORITIES.map((c) => [c, this.waiting[c].length + (this.backlogged.has(c) ? 1 : 0)]),
    ) as Record<Priority, number>;
  }

  private hasDemand(): boolean {
    return PRIORITIES.some((c) => this.waiting[c].length > 0 || this.backlogged.has(c));
  }

  private admit(lane: Priority): void {
    const resolve = this.waiting[lane].shift()!;
    this.admitted[lane]++;
    this.running++;
    resolve();
  }

  private release(): void {
    if (!this.reserved) return;
    clearTimeout(this.reserved.timer);
    this.reserved = null;
  }

  /** Hands free slots on while there is work; one loop at a time (it may wait for the pace). */
  private pump(): void {
    if (this.pumping || !this.open || this.gathering) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.running < this.slots) {
          if (this.reserved) {
            const lane = this.reserved.lane;
            if (this.waiting[lane].length === 0) break; // its job is on its way
            this.release();
            this.admit(lane);
            continue;
          }
          if (!this.hasDemand()) break;
          if (this.pace) {
            const waitMs = await this.pace().catch(() => 0); // Redis away: the call's own check decides
            if (waitMs > 0) {
              await new Promise((resolve) => setTimeout(resolve, waitMs));
              continue;
            }
          }
          // Picked after the pace: work that arrived while waiting for it competes too.
          const lane = this.ledger.next(this.demand());
          if (!lane) break;
          if (this.waiting[lane].length > 0) {
            this.admit(lane);
            continue;
          }
          const timer = setTimeout(() => {
            // It did not come: the lane counts as empty until its worker brings a job again.
            this.backlogged.delete(lane);
            this.release();
            this.pump();
          }, RESERVE_MS);
          timer.unref();
          this.reserved = { lane, timer };
        }
      } finally {
        this.pumping = false;
      }
    })();
  }
}
