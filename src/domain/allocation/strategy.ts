/**
 * Where an order's stock comes from, behind one small interface (in the spirit of Vendure's
 * StockLocationStrategy): a strategy turns order lines and stock levels into a plan; the stock
 * repository reserves a plan atomically, and the status machine's effects release it.
 */
export interface OrderLine {
  sku: string;
  quantity: number;
}

export interface WarehouseStock {
  warehouseId: string;
  region: string;
  sku: string;
  available: number;
}

/** One parcel per warehouse: the lines it ships. */
export interface ParcelPlan {
  warehouseId: string;
  lines: OrderLine[];
}

/** Stock on its way: an unreceived restock. */
export interface InboundStock {
  warehouseId: string;
  sku: string;
  quantity: number;
  eta: Date;
}

export interface AllocationInput {
  /** Merged by SKU (see mergeLines). */
  lines: OrderLine[];
  /** Every warehouse listing one of the SKUs; an unavailable supplier's warehouses read 0. */
  stock: WarehouseStock[];
  /** The order's region. */
  region: string;
  /** Unreceived restocks of the order's SKUs. */
  inbound: InboundStock[];
  /** Units per SKU that orders already backordered wait for: they come first when stock arrives. */
  claimed: Map<string, number>;
  now: Date;
}

export interface AllocationSettings {
  /** ALLOW_SPLIT: an order no single warehouse can fill may ship from several. */
  allowSplit: boolean;
  /** REGION_DISTANCES, symmetric; a pair not listed is farther than every listed one. */
  distances: RegionDistances;
}

/** Distance between two regions (any unit); undefined when the table does not list the pair. */
export type RegionDistances = (a: string, b: string) => number | undefined;

export type AllocationPlan =
  /** Plans best first: the allocator reserves the first one whose stock is still there. */
  | { kind: 'parcels'; options: ParcelPlan[][] }
  /** On-hand stock can't fill it, unreceived restocks can: by `eta` at the latest. */
  | { kind: 'backorder'; eta: Date }
  | { kind: 'out_of_stock' };

export interface AllocationStrategy {
  readonly name: string;
  plan(input: AllocationInput, settings: AllocationSettings): AllocationPlan;
}

/** Lines merged by SKU, so an order listing a SKU twice reserves it once. */
export function mergeLines(lines: OrderLine[]): OrderLine[] {
  const merged = new Map<string, number>();
  for (const line of lines) merged.set(line.sku, (merged.get(line.sku) ?? 0) + line.quantity);
  return [...merged].map(([sku, quantity]) => ({ sku, quantity }));
}

/** Region pairs and their distance, as REGION_DISTANCES lists them: `a:b=12,a:c=30` (symmetric). */
export function regionDistances(pairs: ReadonlyMap<string, number>): RegionDistances {
  return (a, b) => (a === b ? 0 : pairs.get(regionPair(a, b)));
}

/** The key of a region pair in the distance table: order does not matter. */
export function regionPair(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
