import {
  mergeLines,
  type AllocationInput,
  type AllocationPlan,
  type AllocationSettings,
  type AllocationStrategy,
  type InboundStock,
  type OrderLine,
  type ParcelPlan,
  type WarehouseStock,
} from './strategy.js';

/**
 * The default strategy: the whole order from the nearest warehouse that can fill it alone, else
 * (ALLOW_SPLIT) from as few warehouses as possible, else a backorder until a restock, else out
 * of stock.
 *
 * - Claims first. `claimed` units of a SKU belong to earlier backorders: they are set aside
 *   before this order is planned, taken from the warehouses this order would use last (the end
 *   of the preference order below, computed on the raw stock). What is left is "usable".
 * - Preference order of warehouses: in the order's region first, then by distance
 *   (`settings.distances`; a pair not listed is farther than any listed), then the most usable
 *   stock across the order's SKUs (so a surge drains warehouses evenly), then id (code-unit
 *   order, so the answer is the same on every machine and for every order of the stock rows).
 * - Filled now (for every SKU, stock on hand minus claims covers the order): every warehouse that
 *   fills the whole order alone, in preference order, one option each. None, and ALLOW_SPLIT:
 *   split plans, one parcel per warehouse, fewest parcels first (see splitPlans).
 * - Otherwise a backorder, when restocks cover every SKU's demand (claims + this order) at some
 *   time: `eta` is the latest, over SKUs, of the earliest restock ETA at which stock on hand plus
 *   restocks up to then reach the demand. Without ALLOW_SPLIT one warehouse (its stock and its own
 *   restocks) must reach the demand of every SKU, claims included; the earliest such warehouse
 *   gives the ETA. An ETA already past (a late restock) is reported as `now`.
 * - Otherwise out of stock.
 */
export const nearestFirst: AllocationStrategy = {
  name: 'nearest-first',
  plan(input: AllocationInput, settings: AllocationSettings): AllocationPlan {
    const lines = mergeLines(input.lines).filter((l) => l.quantity > 0);
    if (lines.length === 0) return { kind: 'out_of_stock' }; // nothing to ship: no parcel to plan
    const need = new Map(lines.map((l) => [l.sku, l.quantity]));
    const claim = (sku: string) => Math.max(0, input.claimed.get(sku) ?? 0);

    const raw = warehousesOf(input.stock, need);
    const usable = setClaimsAside(rank(raw, need, input.region, settings), need, claim);
    const ranked = rank(usable, need, input.region, settings);

    const fillsNow = lines.every((l) => sum(ranked, (w) => w.available.get(l.sku) ?? 0) >= l.quantity);
    const singles = ranked.filter((w) => lines.every((l) => (w.available.get(l.sku) ?? 0) >= l.quantity));
    if (singles.length > 0) {
      return { kind: 'parcels', options: singles.map((w) => [{ warehouseId: w.id, lines }]) };
    }
    if (fillsNow && settings.allowSplit) return { kind: 'parcels', options: splitPlans(ranked, lines) };

    const eta = settings.allowSplit
      ? restockEta(lines, claim, sumNow(raw), input.inbound)
      : singleWarehouseRestockEta(lines, claim, raw, input.inbound);
    if (eta === undefined) return { kind: 'out_of_stock' };
    return { kind: 'backorder', eta: eta < input.now ? input.now : eta };
  },
};

interface Warehouse {
  id: string;
  region: string;
  /** Units per SKU of the order; SKUs with nothing available are absent. */
  available: Map<string, number>;
}

/** Warehouses holding any of the order's SKUs, rows with nothing available left out. */
function warehousesOf(stock: WarehouseStock[], need: Map<string, number>): Warehouse[] {
  const rows = stock
    .filter((r) => need.has(r.sku) && r.available > 0)
    .sort((a, b) => cmp(a.warehouseId, b.warehouseId) || cmp(a.sku, b.sku) || cmp(a.region, b.region));
  const byId = new Map<string, Warehouse>();
  for (const row of rows) {
    const w = byId.get(row.warehouseId) ?? { id: row.warehouseId, region: row.region, available: new Map() };
    w.available.set(row.sku, (w.available.get(row.sku) ?? 0) + row.available);
    byId.set(row.warehouseId, w);
  }
  return [...byId.values()];
}

/** The preference order (see nearestFirst). */
function rank(
  warehouses: Warehouse[],
  need: Map<string, number>,
  region: string,
  settings: AllocationSettings,
): Warehouse[] {
  const keyed = warehouses.map((w) => ({
    w,
    local: w.region === region ? 0 : 1,
    distance: settings.distances(region, w.region) ?? Number.POSITIVE_INFINITY,
    stock: [...need.keys()].reduce((n, sku) => n + (w.available.get(sku) ?? 0), 0),
  }));
  keyed.sort(
    (a, b) =>
      a.local - b.local ||
      (a.distance === b.distance ? 0 : a.distance < b.distance ? -1 : 1) ||
      b.stock - a.stock ||
      cmp(a.w.id, b.w.id),
  );
  return keyed.map((k) => k.w);
}

/** Usable stock: each SKU's claim taken from the last warehouses of `ranked` first. */
function setClaimsAside(
  ranked: Warehouse[],
  need: Map<string, number>,
  claim: (sku: string) => number,
): Warehouse[] {
  const usable = ranked.map((w) => ({ ...w, available: new Map(w.available) }));
  for (const sku of need.keys()) {
    let left = claim(sku);
    for (let i = usable.length - 1; i >= 0 && left > 0; i--) {
      const has = usable[i].available.get(sku) ?? 0;
      const taken = Math.min(has, left);
      left -= taken;
      if (has - taken > 0) usable[i].available.set(sku, has - taken);
      else usable[i].available.delete(sku);
    }
  }
  return usable.filter((w) => w.available.size > 0);
}

/**
 * Split plans for an order no single warehouse fills, fewest parcels first (ties: the order
 * below). Each plan picks its warehouses, then gives each line's units to them in preference
 * order (a line may be split; a warehouse left with nothing to ship is dropped):
 * 1. greedy by cover: repeatedly the warehouse covering most of what is still missing (ties:
 *    preference order) — the best plan;
 * 2. greedy by preference: each warehouse in preference order that covers something still missing;
 * 3. plan 1 again without its first pick, in case another order just took that stock.
 * Duplicates are left out. `ranked` must hold enough of every line.
 */
function splitPlans(ranked: Warehouse[], lines: OrderLine[]): ParcelPlan[][] {
  const plans: ParcelPlan[][] = [];
  const seen = new Set<string>();
  const add = (picked: Warehouse[] | undefined) => {
    if (!picked) return;
    const plan = assign(ranked, new Set(picked.map((w) => w.id)), lines);
    const key = JSON.stringify(plan);
    if (!seen.has(key)) {
      seen.add(key);
      plans.push(plan);
    }
  };
  const best = pickByCover(ranked, lines);
  add(best);
  add(pickByPreference(ranked, lines));
  if (best && best.length > 0) {
    add(
      pickByCover(
        ranked.filter((w) => w.id !== best[0].id),
        lines,
      ),
    );
  }
  return plans
    .map((plan, i) => ({ plan, i }))
    .sort((a, b) => a.plan.length - b.plan.length || a.i - b.i)
    .map((p) => p.plan);
}

function pickByCover(ranked: Warehouse[], lines: OrderLine[]): Warehouse[] | undefined {
  const missing = new Map(lines.map((l) => [l.sku, l.quantity]));
  const picked: Warehouse[] = [];
  const rest = [...ranked];
  while (sum([...missing.values()], (n) => n) > 0) {
    let bestIndex = -1;
    let bestCover = 0;
    rest.forEach((w, i) => {
      const cover = coverOf(w, missing);
      if (cover > bestCover) [bestIndex, bestCover] = [i, cover];
    });
    if (bestIndex < 0) return undefined;
    const [w] = rest.splice(bestIndex, 1);
    take(w, missing);
    picked.push(w);
  }
  return picked;
}

function pickByPreference(ranked: Warehouse[], lines: OrderLine[]): Warehouse[] | undefined {
  const missing = new Map(lines.map((l) => [l.sku, l.quantity]));
  const picked: Warehouse[] = [];
  for (const w of ranked) {
    if (sum([...missing.values()], (n) => n) === 0) break;
    if (coverOf(w, missing) > 0) {
      take(w, missing);
      picked.push(w);
    }
  }
  return sum([...missing.values()], (n) => n) === 0 ? picked : undefined;
}

function coverOf(w: Warehouse, missing: Map<string, number>): number {
  let cover = 0;
  for (const [sku, n] of missing) cover += Math.min(n, w.available.get(sku) ?? 0);
  return cover;
}

function take(w: Warehouse, missing: Map<string, number>): void {
  for (const [sku, n] of missing) missing.set(sku, n - Math.min(n, w.available.get(sku) ?? 0));
}

/** Each line's units to the picked warehouses in preference order; one parcel per warehouse used. */
function assign(ranked: Warehouse[], picked: Set<string>, lines: OrderLine[]): ParcelPlan[] {
  const parcels = ranked.filter((w) => picked.has(w.id)).map((w) => ({ w, lines: [] as OrderLine[] }));
  for (const line of lines) {
    let left = line.quantity;
    for (const parcel of parcels) {
      const quantity = Math.min(left, parcel.w.available.get(line.sku) ?? 0);
      if (quantity > 0) parcel.lines.push({ sku: line.sku, quantity });
      left -= quantity;
      if (left === 0) break;
    }
  }
  return parcels.filter((p) => p.lines.length > 0).map((p) => ({ warehouseId: p.w.id, lines: p.lines }));
}

function sumNow(warehouses: Warehouse[]): Map<string, number> {
  const total = new Map<string, number>();
  for (const w of warehouses) {
    for (const [sku, n] of w.available) total.set(sku, (total.get(sku) ?? 0) + n);
  }
  return total;
}

/**
 * The latest, over the order's SKUs, of the earliest time at which `now` units plus restocks
 * (by ETA) reach claims + the line; `undefined` when some SKU never gets there. A SKU already
 * covered counts as covered at the earliest possible time (the result is then only the other SKUs').
 */
function restockEta(
  lines: OrderLine[],
  claim: (sku: string) => number,
  now: Map<string, number>,
  inbound: InboundStock[],
): Date | undefined {
  let latest: Date | undefined;
  for (const line of lines) {
    const demand = claim(line.sku) + line.quantity;
    let supply = now.get(line.sku) ?? 0;
    if (supply >= demand) continue;
    const restocks = inbound
      .filter((r) => r.sku === line.sku && r.quantity > 0)
      .sort((a, b) => a.eta.getTime() - b.eta.getTime());
    let at: Date | undefined;
    for (const r of restocks) {
      supply += r.quantity;
      if (supply >= demand) {
        at = r.eta;
        break;
      }
    }
    if (!at) return undefined;
    if (!latest || at > latest) latest = at;
  }
  return latest ?? new Date(0);
}

/** Without split: the earliest restockEta of any one warehouse, from its own stock and restocks. */
function singleWarehouseRestockEta(
  lines: OrderLine[],
  claim: (sku: string) => number,
  warehouses: Warehouse[],
  inbound: InboundStock[],
): Date | undefined {
  const ids = [...new Set([...warehouses.map((w) => w.id), ...inbound.map((r) => r.warehouseId)])].sort(cmp);
  let earliest: Date | undefined;
  for (const id of ids) {
    const now = warehouses.find((w) => w.id === id)?.available ?? new Map<string, number>();
    const eta = restockEta(
      lines,
      claim,
      now,
      inbound.filter((r) => r.warehouseId === id),
    );
    if (eta && (!earliest || eta < earliest)) earliest = eta;
  }
  return earliest;
}

function sum<T>(items: T[], f: (item: T) => number): number {
  return items.reduce((n, item) => n + f(item), 0);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
