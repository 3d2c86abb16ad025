import { ShareLedger, type MinShares } from '../domain/lanes.js';
import { PRIORITIES, type Priority } from '../domain/priority.js';

/**
 * The slots of one stage in one process, shared by the stage's lanes. Each lane's worker hands
 * the jobs it took to `run`; while every slot is busy they wait here, and a freed slot goes to the
 * lane the ShareLedger picks (highest class first, each lower class kept at its minimum share).
 *
 * `pace`, for booking calls: a freed slot is handed on only once the carrier's rate allows another
 * call (answering the ms to wait, 0 when a call may go), so the rate limit — not the slots — is
 * what the lanes share, and the shares are of the calls the carrier takes.
 */
/** How long an idle gate gathers arriving work before its first admission. */
export const GATHER_MS = 20;

export class LaneGate {
  private running = 0;
  private readonly waiting: Record<Priority, (() => void)[]> = { essential: [], express: [], standard: [] };
  private readonly ledger: ShareLedger;
  private pumping = false;
  private open = true;
  private gathering = false;
  /** Admissions per class since start, for tests and logs. */
  readonly admitted: Record<Priority, number> = { essential: 0, express: 0, standard: 0 };

  constructor(
    private readonly slots: number,
    minShares: MinShares,
    private readonly pace?: () => Promise<number>,
  ) {
    this.ledger = new ShareLedger(minShares);
  }

  private unheard = new Set<Priority>();

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

  /** The lane's worker found nothing to take. */
  laneEmpty(lane: Priority): void {
    this.heard(lane);
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

  private waitingCounts(): Record<Priority, number> {
    return Object.fromEntries(PRIORITIES.map((c) => [c, this.waiting[c].length])) as Record<Priority, number>;
  }

  private hasWaiting(): boolean {
    return PRIORITIES.some((c) => this.waiting[c].length > 0);
  }

  private admit(lane: Priority): void {
    const resolve = this.waiting[lane].shift()!;
    this.admitted[lane]++;
    this.running++;
    resolve();
  }

  /** Hands free slots on while work waits; one loop at a time (it may wait for the pace). */
  private pump(): void {
    if (this.pumping || !this.open || this.gathering) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.running < this.slots && this.hasWaiting()) {
          if (this.pace) {
            const waitMs = await this.pace().catch(() => 0); // Redis away: the call's own check decides
            if (waitMs > 0) {
              await new Promise((resolve) => setTimeout(resolve, waitMs));
              continue;
            }
          }
          // Picked after the pace: work that arrived while waiting for it competes too.
          const lane = this.ledger.next(this.waitingCounts());
          if (lane) this.admit(lane);
        }
      } finally {
        this.pumping = false;
      }
    })();
  }
}
