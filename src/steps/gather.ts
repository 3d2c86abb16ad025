/**
 * Group commit's gathering, on its own so it can be tested without a database: items submitted
 * while a batch is open join it; the batch is handed to `handle` once `maxWaitMs` passed since
 * its first item or `maxSize` items are in it, whichever comes first. A batch handed over does
 * not hold up the next one: the next item opens a new batch at once, so several may be in
 * flight. Each submitter's promise settles with its own item's outcome, once `handle` has
 * answered for the whole batch; if `handle` throws, every item of that batch (and only of that
 * batch) rejects with its error.
 */

/** One item's outcome, as `handle` reports it. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GatherOptions {
  /** The longest an item waits for others (ms); 0: only items submitted in the same turn of the event loop. */
  maxWaitMs: number;
  /** A batch is handed over as soon as it holds this many items. */
  maxSize: number;
}

export interface GatherStats {
  /** Batches handed to `handle` so far. */
  batches: number;
  /** Items handed to `handle` so far. */
  items: number;
  /** The most items one batch held. */
  largest: number;
  /** Batches handed over whose `handle` has not answered yet. */
  inFlight: number;
  /** The most batches in flight at one time. */
  mostInFlight: number;
}

export interface Gatherer<T, R> {
  submit(item: T): Promise<R>;
  /** Hands the open batch over now (e.g. at shutdown). */
  flush(): void;
  /** Flushes, then resolves once every batch in flight has been answered. */
  drain(): Promise<void>;
  readonly stats: Readonly<GatherStats>;
}

interface Waiting<T, R> {
  item: T;
  resolve(value: R): void;
  reject(error: unknown): void;
}

export function createGatherer<T, R>(
  options: GatherOptions,
  handle: (items: T[]) => Promise<Outcome<R>[]>,
): Gatherer<T, R> {
  const maxSize = Math.max(1, options.maxSize);
  let open: Waiting<T, R>[] = [];
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<void>>();
  const stats: GatherStats = { batches: 0, items: 0, largest: 0, inFlight: 0, mostInFlight: 0 };

  const run = async (batch: Waiting<T, R>[]) => {
    let outcomes: Outcome<R>[];
    try {
      outcomes = await handle(batch.map((w) => w.item));
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => {
      const outcome = outcomes[i];
      if (!outcome) w.reject(new Error('the batch answered for fewer items than it was given'));
      else if (outcome.ok) w.resolve(outcome.value);
      else w.reject(outcome.error);
    });
  };

  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (open.length === 0) return;
    const batch = open;
    open = [];
    stats.batches++;
    stats.items += batch.length;
    stats.largest = Math.max(stats.largest, batch.length);
    stats.inFlight++;
    stats.mostInFlight = Math.max(stats.mostInFlight, stats.inFlight);
    const running: Promise<void> = run(batch).finally(() => {
      stats.inFlight--;
      inFlight.delete(running);
    });
    inFlight.add(running);
  };

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        open.push({ item, resolve, reject });
        if (open.length >= maxSize) flush();
        else if (open.length === 1) timer = setTimeout(flush, options.maxWaitMs);
      });
    },
    flush,
    async drain() {
      flush();
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    stats,
  };
}
