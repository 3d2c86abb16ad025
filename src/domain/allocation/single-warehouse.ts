import type { AllocationStrategy, OrderLine, WarehouseStock } from './strategy.js';

/**
 * Warehouses that can fill every line on their own, best first: those in the order's region,
 * then the ones with the most spare stock across the order's SKUs (so a surge drains evenly),
 * then by id so the choice is deterministic.
 */
export function singleWarehouseCandidates(
  lines: OrderLine[],
  stock: WarehouseStock[],
  region: string,
): string[] {
  const needed = new Map<string, number>();
  for (const line of lines) needed.set(line.sku, (needed.get(line.sku) ?? 0) + line.quantity);

  const byWarehouse = new Map<string, { region: string; available: Map<string, number> }>();
  for (const row of stock) {
    const entry = byWarehouse.get(row.warehouseId) ?? { region: row.region, available: new Map() };
    entry.available.set(row.sku, row.available);
    byWarehouse.set(row.warehouseId, entry);
  }

  const candidates: { id: string; local: boolean; spare: number }[] = [];
  for (const [id, entry] of byWarehouse) {
    let spare = 0;
    let fills = true;
    for (const [sku, quantity] of needed) {
      const available = entry.available.get(sku) ?? 0;
      if (available < quantity) {
        fills = false;
        break;
      }
      spare += available - quantity;
    }
    if (fills) candidates.push({ id, local: entry.region === region, spare });
  }
  candidates.sort(
    (a, b) => Number(b.local) - Number(a.local) || b.spare - a.spare || a.id.localeCompare(b.id),
  );
  return candidates.map((c) => c.id);
}

/** The default strategy: the whole order from one warehouse, else out of stock. */
export const singleWarehouse: AllocationStrategy = {
  name: 'single-warehouse',
  plan({ lines, stock, region }) {
    const ids = singleWarehouseCandidates(lines, stock, region);
    if (ids.length === 0) return { kind: 'out_of_stock' };
    return { kind: 'parcels', options: ids.map((warehouseId) => [{ warehouseId, lines }]) };
  },
};
