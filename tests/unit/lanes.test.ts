import { describe, expect, it } from 'vitest';
import { DEFAULT_MIN_SHARES, ShareLedger, validMinShares } from '../../src/domain/lanes.js';
import type { Priority } from '../../src/domain/priority.js';
import { GATHER_MS, LaneGate, RESERVE_MS } from '../../src/workers/lane-gate.js';

const ALL = { essential: 1, express: 1, standard: 1 };

/** Picks `n` times with the given classes always waiting; answers each class's count and the order. */
function saturate(waiting: Record<Priority, number>, n: number, ledger = new ShareLedger()) {
  const taken: Record<Priority, number> = { essential: 0, express: 0, standard: 0 };
  const order: Priority[] = [];
  for (let i = 0; i < n; i++) {
    const lane = ledger.next(waiting)!;
    taken[lane]++;
    order.push(lane);
  }
  return { taken, order };
}

describe('ShareLedger: highest class first, each lower class kept at its minimum share', () => {
  it('answers null when nothing waits, and the only class that waits otherwise', () => {
    const ledger = new ShareLedger();
    expect(ledger.next({ essential: 0, express: 0, standard: 0 })).toBeNull();
    expect(ledger.next({ essential: 0, express: 0, standard: 4 })).toBe('standard');
    expect(ledger.next({ essential: 0, express: 2, standard: 0 })).toBe('express');
  });

  it('takes essential, then express, then standard while no lower class is owed a turn', () => {
    expect(saturate(ALL, 4).order).toEqual(['essential', 'essential', 'essential', 'essential']);
    expect(new ShareLedger().next({ essential: 0, express: 1, standard: 1 })).toBe('express');
  });

  it('under a saturating backlog of all three gives standard 10%, express 20% and essential the rest', () => {
    const { taken } = saturate(ALL, 1000);
    expect(taken.standard).toBeGreaterThanOrEqual(99);
    expect(taken.standard).toBeLessThanOrEqual(101);
    expect(taken.express).toBeGreaterThanOrEqual(199);
    expect(taken.express).toBeLessThanOrEqual(201);
    expect(taken.essential).toBe(1000 - taken.standard - taken.express);
  });

  it('gives each lower class its share in every stretch of 20 admissions', () => {
    const { order } = saturate(ALL, 400);
    for (let i = 20; i <= order.length; i++) {
      const window = order.slice(i - 20, i);
      expect(window.filter((c) => c === 'standard').length).toBeGreaterThanOrEqual(1);
      expect(window.filter((c) => c === 'express').length).toBeGreaterThanOrEqual(3);
    }
  });

  it("with essential idle, express takes all but standard's share", () => {
    const { taken } = saturate({ essential: 0, express: 1, standard: 1 }, 1000);
    expect(taken.essential).toBe(0);
    expect(taken.standard).toBeGreaterThanOrEqual(99);
    expect(taken.standard).toBeLessThanOrEqual(101);
    expect(taken.express).toBe(1000 - taken.standard);
  });

  it('does not let a class save up turns while it has nothing waiting', () => {
    const ledger = new ShareLedger();
    saturate({ essential: 1, express: 0, standard: 0 }, 500, ledger);
    const { order } = saturate(ALL, 12, ledger);
    // Back in the queue, standard is owed its first turn after ten admissions, not fifty at once.
    expect(order.slice(0, 4)).toEqual(['essential', 'essential', 'essential', 'essential']);
    expect(order.filter((c) => c === 'standard').length).toBe(1);
  });

  it('follows other shares, and refuses shares that leave the top class nothing', () => {
    const { taken } = saturate(ALL, 1000, new ShareLedger({ standard: 0.3, express: 0.3 }));
    expect(taken.standard).toBeGreaterThanOrEqual(299);
    expect(taken.express).toBeGreaterThanOrEqual(299);
    expect(taken.essential).toBeGreaterThanOrEqual(390);
    expect(validMinShares(DEFAULT_MIN_SHARES)).toBe(true);
    expect(validMinShares({ standard: 0.5, express: 0.5 })).toBe(false);
    expect(validMinShares({ standard: -0.1 })).toBe(false);
  });
});

describe('LaneGate: the slots of one stage, handed out by lane', () => {
  const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

  it('runs up to its slots at once and hands a freed slot to the highest class waiting', async () => {
    const gate = new LaneGate(1, DEFAULT_MIN_SHARES);
    const order: string[] = [];
    let release!: () => void;
    const first = gate.run('standard', () => new Promise<void>((resolve) => (release = resolve)));
    await new Promise((resolve) => setTimeout(resolve, GATHER_MS + 10)); // admitted alone
    const rest = [
      gate.run('standard', async () => void order.push('standard')),
      gate.run('express', async () => void order.push('express')),
      gate.run('essential', async () => void order.push('essential')),
    ];
    await tick();
    expect(order).toEqual([]); // the one slot is busy
    release();
    await Promise.all([first, ...rest]);
    expect(order).toEqual(['essential', 'express', 'standard']);
    expect(gate.admitted).toEqual({ essential: 1, express: 1, standard: 2 });
  });

  it('gathers work arriving together at an idle gate, so it competes by class', async () => {
    const gate = new LaneGate(1, DEFAULT_MIN_SHARES);
    const order: string[] = [];
    const standard = gate.run('standard', async () => void order.push('standard'));
    await new Promise((resolve) => setTimeout(resolve, 2));
    const essential = gate.run('essential', async () => void order.push('essential'));
    await Promise.all([standard, essential]);
    expect(order).toEqual(['essential', 'standard']);
  });

  it('keeps a slot for a higher lane whose next job is on its way from Redis, for a moment only', async () => {
    const gate = new LaneGate(1, DEFAULT_MIN_SHARES);
    const order: string[] = [];
    await gate.run('standard', async () => void order.push('first')); // the gate is not idle now
    gate.laneTook('essential'); // essential's worker took a job: more may follow
    const standard = gate.run('standard', async () => void order.push('standard'));
    await tick();
    expect(order).toEqual(['first']); // the slot waits for essential's job
    const essential = gate.run('essential', async () => void order.push('essential'));
    await Promise.all([standard, essential]);
    expect(order).toEqual(['first', 'essential', 'standard']);

    // Found empty, or not coming within RESERVE_MS: the slot goes on.
    gate.laneTook('express');
    gate.laneEmpty('express');
    await expect(gate.run('standard', async () => 'at once')).resolves.toBe('at once');
    gate.laneTook('essential');
    const started = Date.now();
    await gate.run('standard', async () => undefined);
    expect(Date.now() - started).toBeGreaterThanOrEqual(RESERVE_MS - 20);
  });

  it('passes on what the work answers or throws, and frees the slot either way', async () => {
    const gate = new LaneGate(1, DEFAULT_MIN_SHARES);
    await expect(gate.run('express', async () => 'done')).resolves.toBe('done');
    await expect(
      gate.run('express', async () => {
        throw new Error('step failed');
      }),
    ).rejects.toThrow('step failed');
    await expect(gate.run('standard', async () => 42)).resolves.toBe(42);
  });

  it('admits nothing until every lane brought work or was found empty, then by class', async () => {
    const gate = new LaneGate(1, DEFAULT_MIN_SHARES);
    gate.holdUntilHeard(60_000);
    const order: string[] = [];
    const all = (['standard', 'express'] as const).map((c) => gate.run(c, async () => void order.push(c)));
    await tick();
    expect(order).toEqual([]); // essential's lane not heard from yet
    const essential = gate.run('essential', async () => void order.push('essential'));
    await Promise.all([...all, essential]);
    expect(order).toEqual(['essential', 'express', 'standard']);

    const other = new LaneGate(1, DEFAULT_MIN_SHARES);
    other.holdUntilHeard(60_000);
    const standard = other.run('standard', async () => 'ran');
    other.laneEmpty('essential');
    await tick();
    other.laneEmpty('express');
    await expect(standard).resolves.toBe('ran');
  });

  it('hands a slot on only when the pace allows a call, picking the lane after the wait', async () => {
    let calls = 0;
    // The first ask is refused for 20 ms; work of a higher class arrives meanwhile and goes first.
    const gate = new LaneGate(2, DEFAULT_MIN_SHARES, async () => (calls++ === 0 ? 20 : 0));
    const order: string[] = [];
    const standard = gate.run('standard', async () => void order.push('standard'));
    await tick();
    const essential = gate.run('essential', async () => void order.push('essential'));
    await Promise.all([standard, essential]);
    expect(order).toEqual(['essential', 'standard']);
    expect(calls).toBeGreaterThanOrEqual(3);
  });
});
