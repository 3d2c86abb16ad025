/** A deterministic surge of demo orders: same seed, same orders, so runs compare. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function surgeOrders(count: number, skus: string[], regions: string[], seed = 2026) {
  const random = seededRandom(seed);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  return Array.from({ length: count }, (_, i) => {
    const roll = random();
    const priority = roll < 0.2 ? 'essential' : roll < 0.5 ? 'express' : 'standard';
    const lines = 1 + Math.floor(random() * 2);
    const chosen = [...new Set(Array.from({ length: lines }, () => pick(skus)))];
    return {
      externalId: `DEMO-${String(i + 1).padStart(5, '0')}`,
      priority,
      customer: {
        name: `Customer ${i + 1}`,
        phone: `+86138${String(10_000_000 + i).slice(-8)}`,
        email: `c${i + 1}@example.com`,
      },
      shippingAddress: {
        region: pick(regions),
        line1: `${i + 1} Demo Road`,
        city: 'Shanghai',
        postalCode: '200000',
        country: 'CN',
      },
      items: chosen.map((sku) => ({ sku, quantity: 1 + Math.floor(random() * 3) })),
      contactless: random() < 0.7,
      locale: random() < 0.8 ? 'zh-CN' : 'en',
    };
  });
}

/**
 * What a simulated customer scores a delivered order (1–5): most are pleased with an order that
 * came by its promise, few with a late one. Deterministic for a given random source.
 */
export function feedbackScore(random: () => number, onTime: boolean): number {
  const roll = random();
  if (onTime) return roll < 0.65 ? 5 : roll < 0.96 ? 4 : roll < 0.99 ? 3 : 2;
  return roll < 0.1 ? 4 : roll < 0.4 ? 3 : roll < 0.75 ? 2 : 1;
}
