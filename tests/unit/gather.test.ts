/**
 * Group commit's gathering (src/steps/gather.ts), without a database: what joins one batch, when
 * a batch is handed over, that batches in flight do not hold up the next, and that each
 * submitter gets its own item's outcome.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createGatherer, type Outcome } from '../../src/steps/gather.js';

/** A handler that records each batch and answers when told to. */
function recorder<T>() {
  const batches: { items: T[]; answer(outcomes: Outcome<string>[]): void; fail(error: unknown): void }[] = [];
  const handle = (items: T[]) =>
    new Promise<Outcome<string>[]>((resolve, reject) => {
      batches.push({ items, answer: resolve, fail: reject });
    });
  return { batches, handle };
}

const ok = (value: string): Outcome<string> => ({ ok: true, value });

describe('createGatherer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gathers items submitted within maxWaitMs into one batch, handed over when the wait ends', async () => {
    const { batches, handle } = recorder<number>();
    const gatherer = createGatherer<number, string>({ maxWaitMs: 5, maxSize: 100 }, handle);
    const answers = [1, 2, 3].map((n) => gatherer.submit(n));
    await vi.advanceTimersByTimeAsync(4);
    expect(batches).toHaveLength(0);
    const late = gatherer.submit(4); // still inside the first item's window
    await vi.advanceTimersByTimeAsync(1);
    expect(batches.map((b) => b.items)).toEqual([[1, 2, 3, 4]]);
    batches[0].answer([ok('a'), ok('b'), ok('c'), ok('d')]);
    expect(await Promise.all([...answers, late])).toEqual(['a', 'b', 'c', 'd']);
    expect(gatherer.stats).toMatchObject({ batches: 1, items: 4, largest: 4, inFlight: 0 });
  });

  it('hands a batch over as soon as it holds maxSize items, without waiting', async () => {
    const { batches, handle } = recorder<number>();
    const gatherer = createGatherer<number, string>({ maxWaitMs: 1000, maxSize: 3 }, handle);
    for (const n of [1, 2, 3, 4, 5]) void gatherer.submit(n).catch(() => undefined);
    expect(batches.map((b) => b.items)).toEqual([[1, 2, 3]]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(batches.map((b) => b.items)).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it('keeps several batches in flight: a slow batch does not hold up the next', async () => {
    const { batches, handle } = recorder<string>();
    const gatherer = createGatherer<string, string>({ maxWaitMs: 2, maxSize: 100 }, handle);
    const first = gatherer.submit('x');
    await vi.advanceTimersByTimeAsync(2);
    const second = gatherer.submit('y');
    await vi.advanceTimersByTimeAsync(2);
    expect(batches).toHaveLength(2); // the first has not answered, the second was handed over anyway
    expect(gatherer.stats).toMatchObject({ inFlight: 2, mostInFlight: 2 });
    batches[1].answer([ok('Y')]);
    expect(await second).toBe('Y');
    batches[0].answer([ok('X')]);
    expect(await first).toBe('X');
    await gatherer.drain();
    expect(gatherer.stats.inFlight).toBe(0);
  });

  it("settles each submitter with its own item's outcome, failures included", async () => {
    const { batches, handle } = recorder<string>();
    const gatherer = createGatherer<string, string>({ maxWaitMs: 1, maxSize: 100 }, handle);
    const good = gatherer.submit('good');
    const bad = gatherer.submit('bad');
    await vi.advanceTimersByTimeAsync(1);
    const refusal = new Error('422 for this one only');
    batches[0].answer([ok('made'), { ok: false, error: refusal }]);
    expect(await good).toBe('made');
    await expect(bad).rejects.toBe(refusal);
  });

  it('fails every item of a batch whose handler throws, and only that batch', async () => {
    const { batches, handle } = recorder<string>();
    const gatherer = createGatherer<string, string>({ maxWaitMs: 1, maxSize: 2 }, handle);
    const [a, b, c] = ['a', 'b', 'c'].map((x) => gatherer.submit(x));
    await vi.advanceTimersByTimeAsync(1);
    const down = new Error('database away');
    batches[0].fail(down);
    batches[1].answer([ok('C')]);
    await expect(a).rejects.toBe(down);
    await expect(b).rejects.toBe(down);
    expect(await c).toBe('C');
  });

  it('rejects an item the handler gave no outcome for, never leaving it pending', async () => {
    const { batches, handle } = recorder<string>();
    const gatherer = createGatherer<string, string>({ maxWaitMs: 1, maxSize: 100 }, handle);
    const a = gatherer.submit('a');
    const b = gatherer.submit('b');
    await vi.advanceTimersByTimeAsync(1);
    batches[0].answer([ok('A')]);
    expect(await a).toBe('A');
    await expect(b).rejects.toThrow(/fewer items/);
  });

  it('with maxWaitMs 0 still gathers what arrives in the same turn of the event loop', async () => {
    const { batches, handle } = recorder<number>();
    const gatherer = createGatherer<number, string>({ maxWaitMs: 0, maxSize: 100 }, handle);
    for (const n of [1, 2, 3]) void gatherer.submit(n);
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((b) => b.items)).toEqual([[1, 2, 3]]);
  });

  it('drain hands the open batch over and waits for every batch in flight', async () => {
    const { batches, handle } = recorder<number>();
    const gatherer = createGatherer<number, string>({ maxWaitMs: 10_000, maxSize: 100 }, handle);
    const answer = gatherer.submit(1);
    let drained = false;
    const draining = gatherer.drain().then(() => (drained = true));
    expect(batches).toHaveLength(1); // handed over at once, not after 10 s
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(false);
    batches[0].answer([ok('one')]);
    await draining;
    expect(drained).toBe(true);
    expect(await answer).toBe('one');
  });
});
