import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { STRATEGIES, strategyNamed } from '../../src/domain/allocation/index.js';
import { nearestFirst } from '../../src/domain/allocation/nearest-first.js';
import {
  regionDistances,
  regionPair,
  type AllocationInput,
  type AllocationPlan,
  type AllocationSettings,
  type InboundStock,
  type OrderLine,
  type ParcelPlan,
  type WarehouseStock,
} from '../../src/domain/allocation/strategy.js';

const NOW = new Date('2026-12-01T12:00:00Z');
const hours = (n: number) => new Date(NOW.getTime() + n * 3_600_000);

const row = (warehouseId: string, region: string, sku: string, available: number): WarehouseStock => ({
  warehouseId,
  region,
  sku,
  available,
});
const restock = (warehouseId: string, sku: string, quantity: number, eta: Date): InboundStock => ({
  warehouseId,
  sku,
  quantity,
  eta,
});
const line = (sku: string, quantity: number): OrderLine => ({ sku, quantity });

const SPLIT: AllocationSettings = { allowSplit: true, distances: () => undefined };
const NO_SPLIT: AllocationSettings = { allowSplit: false, distances: () => undefined };

function plan(
  input: Partial<AllocationInput> & Pick<AllocationInput, 'lines' | 'stock'>,
  settings: AllocationSettings = SPLIT,
): AllocationPlan {
  return nearestFirst.plan({ region: 'r', inbound: [], claimed: new Map(), now: NOW, ...input }, settings);
}

function options(p: AllocationPlan): ParcelPlan[][] {
  if (p.kind !== 'parcels') throw new Error(`expected parcels, got ${JSON.stringify(p)}`);
  return p.options;
}

/** The warehouses of each option whose whole order ships from one warehouse. */
function singles(p: AllocationPlan): string[] {
  return options(p).map((o) => {
    expect(o).toHaveLength(1);
    return o[0].warehouseId;
  });
}

describe('nearestFirst: one warehouse that fills the whole order', () => {
  it('is named nearest-first', () => {
    expect(nearestFirst.name).toBe('nearest-first');
  });

  it('offers a single warehouse before any split, even a far one over two local ones', () => {
    const stock = [row('local1', 'r', 'A', 5), row('local2', 'r', 'A', 5), row('far', 'x', 'A', 10)];
    const p = plan({ lines: [line('A', 8)], stock });
    expect(options(p)).toEqual([[{ warehouseId: 'far', lines: [line('A', 8)] }]]);
  });

  it('prefers a warehouse in the order region over one elsewhere with more stock', () => {
    const stock = [row('far', 'beijing', 'A', 1000), row('near', 'shanghai', 'A', 5)];
    expect(singles(plan({ lines: [line('A', 2)], stock, region: 'shanghai' }))).toEqual(['near', 'far']);
    expect(singles(plan({ lines: [line('A', 2)], stock, region: 'beijing' }))).toEqual(['far', 'near']);
  });

  it('orders: local region, then the distance table (unlisted = farthest), then spare stock, then id', () => {
    const distances = regionDistances(
      new Map([
        [regionPair('home', 'near'), 10],
        [regionPair('home', 'mid'), 20],
      ]),
    );
    const stock = [
      row('unlisted-rich', 'nowhere', 'A', 999),
      row('mid', 'mid', 'A', 500),
      row('near-b', 'near', 'A', 5),
      row('near-a', 'near', 'A', 5),
      row('near-rich', 'near', 'A', 50),
      row('home-lean', 'home', 'A', 2),
    ];
    const p = plan({ lines: [line('A', 2)], stock, region: 'home' }, { allowSplit: true, distances });
    expect(singles(p)).toEqual(['home-lean', 'near-rich', 'near-a', 'near-b', 'mid', 'unlisted-rich']);
  });

  it('keeps only warehouses that hold every line, in the full quantity', () => {
    const stock = [
      row('both', 'r', 'A', 3),
      row('both', 'r', 'B', 1),
      row('onlyA', 'r', 'A', 100),
      row('short', 'r', 'A', 2),
      row('short', 'r', 'B', 100),
    ];
    const lines = [line('A', 3), line('B', 1)];
    expect(options(plan({ lines, stock }))).toEqual([[{ warehouseId: 'both', lines }]]);
  });

  it('adds up a SKU listed twice before checking it fits', () => {
    const stock = [row('w1', 'r', 'A', 3), row('w2', 'r', 'A', 4)];
    expect(options(plan({ lines: [line('A', 2), line('A', 2)], stock }))).toEqual([
      [{ warehouseId: 'w2', lines: [line('A', 4)] }],
    ]);
  });

  it('among equally local warehouses, the one with most spare stock comes first', () => {
    const stock = [
      row('lean', 'r', 'A', 5),
      row('lean', 'r', 'B', 5),
      row('rich', 'r', 'A', 50),
      row('rich', 'r', 'B', 50),
      row('mid', 'r', 'A', 20),
      row('mid', 'r', 'B', 6),
    ];
    expect(singles(plan({ lines: [line('A', 1), line('B', 1)], stock }))).toEqual(['rich', 'mid', 'lean']);
  });

  it('breaks ties by id, whatever order the rows came in', () => {
    const stock = [row('w-c', 'r', 'A', 10), row('w-a', 'r', 'A', 10), row('w-b', 'r', 'A', 10)];
    expect(singles(plan({ lines: [line('A', 1)], stock }))).toEqual(['w-a', 'w-b', 'w-c']);
    expect(singles(plan({ lines: [line('A', 1)], stock: [...stock].reverse() }))).toEqual([
      'w-a',
      'w-b',
      'w-c',
    ]);
  });

  it('takes the exact remaining quantity', () => {
    expect(singles(plan({ lines: [line('A', 4)], stock: [row('w', 'r', 'A', 4)] }))).toEqual(['w']);
  });

  it('ignores rows with nothing available, and SKUs the order does not list', () => {
    const stock = [
      row('empty', 'r', 'A', 0),
      row('negative', 'r', 'A', -3),
      row('other-sku', 'r', 'Z', 100),
      row('w', 'x', 'A', 1),
    ];
    expect(singles(plan({ lines: [line('A', 1)], stock }))).toEqual(['w']);
    expect(plan({ lines: [line('A', 1)], stock: [row('w1', 'r', 'A', 0)] })).toEqual({
      kind: 'out_of_stock',
    });
    expect(plan({ lines: [line('A', 1)], stock: [] })).toEqual({ kind: 'out_of_stock' });
  });
});

describe('nearestFirst: split plans', () => {
  it('splits across two warehouses, one parcel each, when none fills the order alone', () => {
    const stock = [row('wa', 'r', 'A', 10), row('wb', 'r', 'B', 10)];
    const p = plan({ lines: [line('A', 1), line('B', 1)], stock });
    expect(options(p)[0]).toEqual([
      { warehouseId: 'wa', lines: [line('A', 1)] },
      { warehouseId: 'wb', lines: [line('B', 1)] },
    ]);
  });

  it('uses as few parcels as possible: the warehouse covering most goes in first', () => {
    // Preference order (local, then id) would take a1, a2, a3 and then big; covering most first
    // needs only big + c.
    const stock = [
      row('a1', 'r', 'A', 1),
      row('a2', 'r', 'A', 1),
      row('a3', 'r', 'A', 1),
      row('big', 'x', 'A', 3),
      row('big', 'x', 'B', 3),
      row('c', 'x', 'C', 5),
    ];
    const lines = [line('A', 3), line('B', 3), line('C', 1)];
    const all = options(plan({ lines, stock }));
    expect(all[0].map((p) => p.warehouseId).sort()).toEqual(['big', 'c']);
    expect(all.length).toBeGreaterThanOrEqual(2); // alternatives for when that stock is gone
    for (let i = 1; i < all.length; i++) expect(all[i].length).toBeGreaterThanOrEqual(all[i - 1].length);
  });

  it('splits across three warehouses when it takes three', () => {
    const stock = [row('wa', 'r', 'A', 2), row('wb', 'r', 'B', 2), row('wc', 'x', 'C', 2)];
    const lines = [line('A', 2), line('B', 1), line('C', 2)];
    expect(options(plan({ lines, stock }))[0]).toEqual([
      { warehouseId: 'wa', lines: [line('A', 2)] },
      { warehouseId: 'wb', lines: [line('B', 1)] },
      { warehouseId: 'wc', lines: [line('C', 2)] },
    ]);
  });

  it('splits one line across warehouses, the preferred warehouse shipping as much as it holds', () => {
    const distances = regionDistances(new Map([[regionPair('r', 'x'), 5]]));
    const stock = [row('far', 'y', 'A', 6), row('near', 'x', 'A', 4), row('local', 'r', 'A', 3)];
    const best = options(plan({ lines: [line('A', 12)], stock }, { allowSplit: true, distances }))[0];
    expect(best).toEqual([
      { warehouseId: 'local', lines: [line('A', 3)] },
      { warehouseId: 'near', lines: [line('A', 4)] },
      { warehouseId: 'far', lines: [line('A', 5)] },
    ]);
    // 9 units: far (most cover) and one more; local wins the tie with near by preference.
    expect(options(plan({ lines: [line('A', 9)], stock }, { allowSplit: true, distances }))[0]).toEqual([
      { warehouseId: 'local', lines: [line('A', 3)] },
      { warehouseId: 'far', lines: [line('A', 6)] },
    ]);
  });

  it('lists each warehouse once per plan and only lines with units', () => {
    const stock = [
      row('w1', 'r', 'A', 2),
      row('w1', 'r', 'B', 1),
      row('w2', 'r', 'A', 5),
      row('w2', 'r', 'C', 1),
    ];
    for (const o of options(plan({ lines: [line('A', 6), line('B', 1), line('C', 1)], stock }))) {
      expect(new Set(o.map((p) => p.warehouseId)).size).toBe(o.length);
      for (const parcel of o) {
        expect(parcel.lines.length).toBeGreaterThan(0);
        for (const l of parcel.lines) expect(l.quantity).toBeGreaterThan(0);
      }
    }
  });

  it('without ALLOW_SPLIT an order no single warehouse fills is out of stock, not split', () => {
    const stock = [row('wa', 'r', 'A', 10), row('wb', 'r', 'B', 10)];
    const lines = [line('A', 1), line('B', 1)];
    expect(plan({ lines, stock }, NO_SPLIT)).toEqual({ kind: 'out_of_stock' });
    expect(plan({ lines, stock }, SPLIT).kind).toBe('parcels');
  });

  it('without ALLOW_SPLIT it is a backorder when one warehouse, with its own restocks, will fill it', () => {
    const stock = [row('wa', 'r', 'A', 10), row('wb', 'r', 'B', 10)];
    const lines = [line('A', 1), line('B', 1)];
    const inbound = [restock('wa', 'B', 1, hours(30)), restock('wb', 'A', 1, hours(20))];
    expect(plan({ lines, stock, inbound }, NO_SPLIT)).toEqual({ kind: 'backorder', eta: hours(20) });
    // Restocks that only two warehouses together would have don't count.
    const elsewhere = [restock('wc', 'A', 1, hours(5)), restock('wd', 'B', 1, hours(5))];
    expect(plan({ lines, stock, inbound: elsewhere }, NO_SPLIT)).toEqual({ kind: 'out_of_stock' });
  });
});

describe('nearestFirst: claims of earlier backorders', () => {
  it('comes after what earlier backorders wait for', () => {
    const stock = [row('w', 'r', 'A', 10)];
    expect(plan({ lines: [line('A', 5)], stock, claimed: new Map([['A', 5]]) }).kind).toBe('parcels');
    expect(plan({ lines: [line('A', 5)], stock, claimed: new Map([['A', 6]]) })).toEqual({
      kind: 'out_of_stock',
    });
    const inbound = [restock('w', 'A', 1, hours(12))];
    expect(plan({ lines: [line('A', 5)], stock, claimed: new Map([['A', 6]]), inbound })).toEqual({
      kind: 'backorder',
      eta: hours(12),
    });
  });

  it('sets the claim aside from the warehouses the order would use last', () => {
    const stock = [row('local', 'r', 'A', 5), row('far', 'x', 'A', 5)];
    const claimed = new Map([['A', 5]]);
    // Without claims both fill it; with 5 claimed, far's 5 are set aside and only local is offered.
    expect(singles(plan({ lines: [line('A', 5)], stock }))).toEqual(['local', 'far']);
    expect(singles(plan({ lines: [line('A', 5)], stock, claimed }))).toEqual(['local']);
    // A claim bigger than the last warehouse's stock eats into the next one.
    const bigger = new Map([['A', 7]]);
    expect(plan({ lines: [line('A', 4)], stock, claimed: bigger }, NO_SPLIT)).toEqual({
      kind: 'out_of_stock',
    });
    expect(options(plan({ lines: [line('A', 3)], stock, claimed: bigger }))).toEqual([
      [{ warehouseId: 'local', lines: [line('A', 3)] }],
    ]);
  });

  it('a claim on one SKU leaves the others alone', () => {
    const stock = [row('w', 'r', 'A', 2), row('w', 'r', 'B', 2)];
    const claimed = new Map([['B', 2]]);
    expect(singles(plan({ lines: [line('A', 2)], stock, claimed }))).toEqual(['w']);
  });
});

describe('nearestFirst: backorders', () => {
  it('one SKU: the ETA of the restock that covers it', () => {
    const inbound = [restock('w', 'A', 10, hours(48)), restock('w', 'A', 10, hours(24))];
    expect(plan({ lines: [line('A', 5)], stock: [row('w', 'r', 'A', 1)], inbound })).toEqual({
      kind: 'backorder',
      eta: hours(24),
    });
  });

  it('two SKUs: the latest of their ETAs', () => {
    const stock = [row('w', 'r', 'A', 1), row('w', 'r', 'B', 1)];
    const inbound = [restock('w', 'A', 5, hours(10)), restock('v', 'B', 5, hours(40))];
    expect(plan({ lines: [line('A', 3), line('B', 3)], stock, inbound })).toEqual({
      kind: 'backorder',
      eta: hours(40),
    });
    // A SKU covered now does not move the ETA.
    const onlyA = [restock('w', 'A', 5, hours(10))];
    expect(plan({ lines: [line('A', 3), line('B', 1)], stock, inbound: onlyA })).toEqual({
      kind: 'backorder',
      eta: hours(10),
    });
  });

  it('restocks add up across ETAs, with on-hand stock in every warehouse', () => {
    const stock = [row('w1', 'r', 'A', 2), row('w2', 'x', 'A', 1)];
    const inbound = [
      restock('w2', 'A', 3, hours(50)),
      restock('w1', 'A', 3, hours(20)),
      restock('w1', 'A', 100, hours(90)),
    ];
    // 3 now, 6 at +20 h, 9 at +50 h: 9 units wait for the second restock.
    expect(plan({ lines: [line('A', 9)], stock, inbound })).toEqual({ kind: 'backorder', eta: hours(50) });
    expect(plan({ lines: [line('A', 6)], stock, inbound })).toEqual({ kind: 'backorder', eta: hours(20) });
  });

  it('out of stock when restocks never cover the demand', () => {
    const stock = [row('w', 'r', 'A', 1), row('w', 'r', 'B', 5)];
    const inbound = [restock('w', 'A', 2, hours(10)), restock('w', 'B', 100, hours(5))];
    expect(plan({ lines: [line('A', 4), line('B', 1)], stock, inbound })).toEqual({ kind: 'out_of_stock' });
    expect(plan({ lines: [line('A', 1)], stock: [], inbound: [restock('w', 'Z', 9, hours(1))] })).toEqual({
      kind: 'out_of_stock',
    });
  });

  it('a restock already past its ETA promises now, not the past', () => {
    const inbound = [restock('w', 'A', 5, hours(-6))];
    expect(plan({ lines: [line('A', 2)], stock: [], inbound })).toEqual({ kind: 'backorder', eta: NOW });
  });
});

// A small seeded generator, so a failure names a seed that reproduces it.
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: T[], rnd: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function randomInput(rnd: () => number): AllocationInput {
  const int = (n: number) => Math.floor(rnd() * n);
  const skus = ['A', 'B', 'C', 'D'].slice(0, 1 + int(4));
  const regions = ['r', 'x', 'y'];
  const stock: WarehouseStock[] = [];
  const inbound: InboundStock[] = [];
  for (let w = 0; w < 1 + int(6); w++) {
    const region = regions[int(regions.length)];
    for (const sku of skus) {
      if (rnd() < 0.7) stock.push(row(`w${w}`, region, sku, int(8)));
      if (rnd() < 0.3) inbound.push(restock(`w${w}`, sku, 1 + int(6), hours(1 + int(100))));
    }
  }
  const lines = skus.filter(() => rnd() < 0.8).map((sku) => line(sku, 1 + int(10)));
  if (lines.length === 0) lines.push(line(skus[0], 1));
  const claimed = new Map(skus.filter(() => rnd() < 0.3).map((sku) => [sku, int(6)] as [string, number]));
  return { lines, stock, region: regions[int(regions.length)], inbound, claimed, now: NOW };
}

const DISTANCES: AllocationSettings['distances'] = regionDistances(new Map([[regionPair('r', 'x'), 7]]));

describe('nearestFirst: properties over random inputs', () => {
  it('the same input gives the same plan, whatever order the stock and restock rows come in', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = random(seed);
      const input = randomInput(rnd);
      for (const allowSplit of [true, false]) {
        const settings = { allowSplit, distances: DISTANCES };
        const expected = nearestFirst.plan(input, settings);
        const again = nearestFirst.plan(
          { ...input, stock: shuffled(input.stock, rnd), inbound: shuffled(input.inbound, rnd) },
          settings,
        );
        expect(again, `seed ${seed}`).toEqual(expected);
      }
    }
  });

  it('every parcels option reserves exactly the order, from warehouses that hold it, after the claims', () => {
    let parcels = 0;
    let splits = 0;
    for (let seed = 1; seed <= 1000; seed++) {
      const input = randomInput(random(seed));
      const allowSplit = seed % 4 !== 0;
      const p = nearestFirst.plan(input, { allowSplit, distances: DISTANCES });
      const available = new Map(input.stock.map((r) => [`${r.warehouseId}/${r.sku}`, r.available]));
      const total = (sku: string) =>
        input.stock.filter((r) => r.sku === sku && r.available > 0).reduce((n, r) => n + r.available, 0);
      const coversNow = input.lines.every(
        (l) => total(l.sku) - (input.claimed.get(l.sku) ?? 0) >= l.quantity,
      );
      if (p.kind !== 'parcels') {
        if (allowSplit) expect(coversNow, `seed ${seed}: stock on hand covers it`).toBe(false);
        continue;
      }
      parcels++;
      expect(coversNow, `seed ${seed}`).toBe(true);
      expect(p.options.length, `seed ${seed}`).toBeGreaterThan(0);
      for (const option of p.options) {
        if (option.length > 1) splits++;
        if (!allowSplit) expect(option, `seed ${seed}`).toHaveLength(1);
        expect(new Set(option.map((o) => o.warehouseId)).size, `seed ${seed}`).toBe(option.length);
        const reserved = new Map<string, number>();
        for (const parcel of option) {
          expect(parcel.lines.length, `seed ${seed}`).toBeGreaterThan(0);
          for (const l of parcel.lines) {
            expect(l.quantity, `seed ${seed}`).toBeGreaterThan(0);
            expect(l.quantity, `seed ${seed}`).toBeLessThanOrEqual(
              available.get(`${parcel.warehouseId}/${l.sku}`) ?? 0,
            );
            reserved.set(l.sku, (reserved.get(l.sku) ?? 0) + l.quantity);
          }
        }
        expect(reserved, `seed ${seed}`).toEqual(new Map(input.lines.map((l) => [l.sku, l.quantity])));
      }
    }
    // The generator really exercises both kinds of plan.
    expect(parcels).toBeGreaterThan(100);
    expect(splits).toBeGreaterThan(20);
  });

  it('a backorder ETA is a restock ETA (or now), and restocks really cover the demand by then', () => {
    let backorders = 0;
    for (let seed = 1; seed <= 1000; seed++) {
      const input = randomInput(random(seed));
      const p = nearestFirst.plan(input, { allowSplit: true, distances: DISTANCES });
      if (p.kind !== 'backorder') continue;
      backorders++;
      expect(p.eta >= NOW, `seed ${seed}`).toBe(true);
      for (const l of input.lines) {
        const supply =
          input.stock.filter((r) => r.sku === l.sku && r.available > 0).reduce((n, r) => n + r.available, 0) +
          input.inbound.filter((r) => r.sku === l.sku && r.eta <= p.eta).reduce((n, r) => n + r.quantity, 0);
        expect(supply, `seed ${seed}`).toBeGreaterThanOrEqual(l.quantity + (input.claimed.get(l.sku) ?? 0));
      }
    }
    expect(backorders).toBeGreaterThan(50);
  });
});

describe('the strategy registry and ALLOCATION_STRATEGY', () => {
  it('names nearest-first, the default', () => {
    expect(Object.keys(STRATEGIES)).toEqual(['nearest-first']);
    expect(strategyNamed('nearest-first')).toBe(nearestFirst);
    expect(loadConfig({}).allocation.strategy).toBe('nearest-first');
    expect(loadConfig({ ALLOCATION_STRATEGY: 'nearest-first' }).allocation.strategy).toBe('nearest-first');
  });

  it('refuses an unknown name', () => {
    expect(() => strategyNamed('single-warehouse')).toThrow(/nearest-first/);
    expect(() => strategyNamed('toString')).toThrow();
    let error: unknown;
    try {
      loadConfig({ ALLOCATION_STRATEGY: 'cheapest' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('ALLOCATION_STRATEGY');
    expect(message).toContain('nearest-first');
    expect(message).toContain('cheapest');
    expect(message).not.toContain('\n');
  });
});
