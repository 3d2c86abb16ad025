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

export type AllocationPlan = { kind: 'parcels'; options: ParcelPlan[][] } | { kind: 'out_of_stock' };

export interface AllocationStrategy {
  readonly name: string;
  /** Plans best first: the allocator reserves the first one whose stock is still there. */
  plan(lines: OrderLine[], stock: WarehouseStock[], region: string): AllocationPlan;
}

/** Lines merged by SKU, so an order listing a SKU twice reserves it once. */
export function mergeLines(lines: OrderLine[]): OrderLine[] {
  const merged = new Map<string, number>();
  for (const line of lines) merged.set(line.sku, (merged.get(line.sku) ?? 0) + line.quantity);
  return [...merged].map(([sku, quantity]) => ({ sku, quantity }));
}
