export interface CarrierChoice {
  id: string;
  enabled: boolean;
  regions: string[];
  rank: number;
  transitHours: number | null;
}

export function servesRegion(carrier: Pick<CarrierChoice, 'regions'>, region: string): boolean {
  return carrier.regions.includes('*') || carrier.regions.includes(region);
}

/** Enabled carriers that serve the region, in the order they are tried (lower rank first). */
export function eligibleCarriers<C extends CarrierChoice>(carriers: C[], region: string): C[] {
  return carriers
    .filter((c) => c.enabled && servesRegion(c, region))
    .sort((a, b) => a.rank - b.rank || a.id.localeCompare(b.id));
}
