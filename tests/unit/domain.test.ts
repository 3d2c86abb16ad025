import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mergeLines } from '../../src/domain/allocation/strategy.js';
import { canonicalJson, requestHash } from '../../src/domain/canonical.js';
import {
  eligibleCarriers,
  servesRegion,
  type CarrierCandidate as CarrierChoice,
} from '../../src/domain/carrier-choice.js';
import { jobPriority, PRIORITIES } from '../../src/domain/priority.js';
import { promiseAt, transitHoursFor } from '../../src/domain/promise.js';
import {
  hmacHex,
  safeEqual,
  shopWebhookSignature,
  verifyCarrierSignature,
} from '../../src/domain/signing.js';
import {
  CANCELLABLE,
  canTransition,
  isTerminal,
  ORDER_STATUSES,
  TERMINAL,
  type OrderStatus,
} from '../../src/domain/status.js';
import { customerMessage } from '../../src/domain/messages.js';
import { cappedBackoff } from '../../src/workers/backoff.js';

describe('order status machine', () => {
  // The lifecycle order: a status may only move to one further along (or to a terminal one).
  // The waiting states and allocated share a rank: a region lockdown holds an allocated order and a
  // lift releases it; a held order that only a restock can fill waits backordered, and the other way.
  const rank: Record<OrderStatus, number> = {
    received: 0,
    backordered: 2,
    on_hold: 2,
    allocated: 2,
    dispatched: 4,
    in_transit: 5,
    delivered: 6,
    cancelled: 6,
    failed: 6,
  };

  it('walks the happy path forward', () => {
    const path: OrderStatus[] = ['received', 'allocated', 'dispatched', 'in_transit', 'delivered'];
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1], path[i])).toBe(true);
    expect(canTransition('dispatched', 'delivered')).toBe(true); // a delivered event may skip in_transit
  });

  it('never moves backwards, and never to the same status', () => {
    for (const from of ORDER_STATUSES) {
      expect(canTransition(from, from)).toBe(false);
      for (const to of ORDER_STATUSES) {
        if (rank[to] < rank[from]) expect(canTransition(from, to), `${from} → ${to}`).toBe(false);
      }
    }
    expect(canTransition('delivered', 'in_transit')).toBe(false);
    expect(canTransition('dispatched', 'allocated')).toBe(false);
    expect(canTransition('allocated', 'received')).toBe(false);
  });

  it('a lockdown holds an allocated order and a lift releases it, never back to received', () => {
    expect(canTransition('allocated', 'on_hold')).toBe(true);
    expect(canTransition('on_hold', 'allocated')).toBe(true);
    expect(canTransition('on_hold', 'received')).toBe(false);
  });

  it('terminal statuses go nowhere', () => {
    for (const from of ['delivered', 'cancelled', 'failed'] as const) {
      expect(isTerminal(from)).toBe(true);
      for (const to of ORDER_STATUSES) expect(canTransition(from, to)).toBe(false);
    }
    for (const status of ORDER_STATUSES.filter((s) => !TERMINAL.has(s)))
      expect(isTerminal(status)).toBe(false);
  });

  it('only orders that have not left a warehouse can be cancelled', () => {
    for (const status of ORDER_STATUSES) {
      expect(canTransition(status, 'cancelled'), status).toBe(CANCELLABLE.has(status));
    }
    expect(canTransition('dispatched', 'cancelled')).toBe(false);
    expect(canTransition('in_transit', 'cancelled')).toBe(false);
  });

  it('any non-terminal status can fail', () => {
    for (const status of ORDER_STATUSES.filter((s) => !isTerminal(s))) {
      expect(canTransition(status, 'failed'), status).toBe(true);
    }
  });
});

describe('jobPriority', () => {
  it('takes essential before express before standard, all with a priority (≥ 1)', () => {
    expect(jobPriority('essential')).toBeLessThan(jobPriority('express'));
    expect(jobPriority('express')).toBeLessThan(jobPriority('standard'));
    for (const p of PRIORITIES) {
      expect(Number.isInteger(jobPriority(p))).toBe(true);
      expect(jobPriority(p)).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('mergeLines', () => {
  it('merges a SKU listed twice into one line with the summed quantity, keeping first-seen order', () => {
    expect(
      mergeLines([
        { sku: 'B', quantity: 1 },
        { sku: 'A', quantity: 2 },
        { sku: 'B', quantity: 3 },
      ]),
    ).toEqual([
      { sku: 'B', quantity: 4 },
      { sku: 'A', quantity: 2 },
    ]);
    expect(mergeLines([])).toEqual([]);
  });
});

describe('eligibleCarriers', () => {
  const carrier = (id: string, rank: number, regions: string[], enabled = true): CarrierChoice => ({
    id,
    rank,
    regions,
    enabled,
    transitHours: null,
  });

  it('keeps enabled carriers serving the region (or every region), lowest rank first', () => {
    const carriers = [
      carrier('slow', 3, ['*']),
      carrier('local', 2, ['shanghai']),
      carrier('elsewhere', 1, ['beijing']),
      carrier('off', 0, ['*'], false),
      carrier('fast', 1, ['shanghai', 'beijing']),
    ];
    expect(eligibleCarriers(carriers, 'shanghai').map((c) => c.id)).toEqual(['fast', 'local', 'slow']);
    expect(eligibleCarriers(carriers, 'beijing').map((c) => c.id)).toEqual(['elsewhere', 'fast', 'slow']);
    expect(eligibleCarriers(carriers, 'nowhere').map((c) => c.id)).toEqual(['slow']);
  });

  it('orders equal ranks by id and does not reorder its input', () => {
    const carriers = [carrier('b', 1, ['*']), carrier('a', 1, ['*'])];
    expect(eligibleCarriers(carriers, 'x').map((c) => c.id)).toEqual(['a', 'b']);
    expect(carriers.map((c) => c.id)).toEqual(['b', 'a']);
  });

  it('answers nothing when every carrier is disabled or elsewhere', () => {
    expect(
      eligibleCarriers([carrier('a', 1, ['*'], false), carrier('b', 1, ['beijing'])], 'shanghai'),
    ).toEqual([]);
  });

  it('servesRegion: a listed region or the wildcard', () => {
    expect(servesRegion({ regions: ['*'] }, 'anything')).toBe(true);
    expect(servesRegion({ regions: ['a', 'b'] }, 'b')).toBe(true);
    expect(servesRegion({ regions: ['a'] }, 'b')).toBe(false);
    expect(servesRegion({ regions: [] }, 'a')).toBe(false);
  });
});

describe('delivery promise', () => {
  const c = (id: string, rank: number, transitHours: number | null, regions = ['*']): CarrierChoice => ({
    id,
    rank,
    regions,
    enabled: true,
    transitHours,
  });

  it("promises the first carrier's transit time, else the default", () => {
    expect(transitHoursFor([c('b', 2, 72), c('a', 1, 12)], 'r', 48)).toBe(12);
    expect(transitHoursFor([c('a', 1, null), c('b', 2, 12)], 'r', 48)).toBe(48);
    expect(transitHoursFor([], 'r', 48)).toBe(48);
    expect(transitHoursFor([c('a', 1, 6, ['other'])], 'r', 30)).toBe(30);
  });

  it('promiseAt adds the transit hours to the time received', () => {
    const received = new Date('2024-03-01T10:00:00.000Z');
    expect(promiseAt(received, 24).toISOString()).toBe('2024-03-02T10:00:00.000Z');
    expect(promiseAt(received, 0).getTime()).toBe(received.getTime());
    expect(received.toISOString()).toBe('2024-03-01T10:00:00.000Z'); // not mutated
  });
});

describe('canonicalJson / requestHash', () => {
  it('ignores key order and spacing at every depth', () => {
    const a = JSON.parse('{"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": null}}');
    const b = JSON.parse('{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}');
    expect(canonicalJson(a)).toBe('{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
    expect(requestHash(a)).toBe(requestHash(b));
    expect(requestHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps array order and tells different values apart', () => {
    expect(requestHash({ items: [1, 2] })).not.toBe(requestHash({ items: [2, 1] }));
    expect(requestHash({ a: 1 })).not.toBe(requestHash({ a: '1' }));
    expect(requestHash({ a: 1 })).not.toBe(requestHash({ a: 1, b: 2 }));
    expect(requestHash({ a: null })).not.toBe(requestHash({}));
  });

  it('drops undefined fields like JSON.stringify does, and escapes strings', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
    expect(canonicalJson({ 'k"': 'line\n"quoted"' })).toBe(JSON.stringify({ 'k"': 'line\n"quoted"' }));
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
    expect(canonicalJson('x')).toBe('"x"');
  });
});

describe('signatures', () => {
  const secret = 'carrier-secret-123';
  const body = '{"trackingNumber":"T1","status":"delivered","at":"2024-01-01T00:00:00Z"}';
  const hex = createHmac('sha256', secret).update(body).digest('hex');

  it('hmacHex is the hex HMAC-SHA256', () => {
    expect(hmacHex(secret, body)).toBe(hex);
  });

  it('verifyCarrierSignature accepts sha256=<hex HMAC of the raw body> only', () => {
    expect(verifyCarrierSignature(body, secret, `sha256=${hex}`)).toBe(true);
    expect(verifyCarrierSignature(body, secret, undefined)).toBe(false);
    expect(verifyCarrierSignature(body, secret, hex)).toBe(false); // no scheme
    expect(verifyCarrierSignature(body, secret, `sha1=${hex}`)).toBe(false);
    expect(verifyCarrierSignature(body, 'other-secret', `sha256=${hex}`)).toBe(false);
    expect(verifyCarrierSignature(body + ' ', secret, `sha256=${hex}`)).toBe(false); // raw bytes, not parsed JSON
    expect(verifyCarrierSignature(body, secret, `sha256=${hex.slice(0, -1)}`)).toBe(false);
    expect(verifyCarrierSignature(body, secret, 'sha256=')).toBe(false);
  });

  it('shopWebhookSignature is t=<unix s>,v1=<hex HMAC of "<t>.<body>">', () => {
    const signature = shopWebhookSignature('{"x":1}', 'whsec', 1700000000);
    const expected = createHmac('sha256', 'whsec').update('1700000000.{"x":1}').digest('hex');
    expect(signature).toBe(`t=1700000000,v1=${expected}`);
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(shopWebhookSignature('{"x":1}', 'whsec', 1700000001)).not.toBe(signature);
  });

  it('safeEqual compares whole strings, whatever their lengths', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
    expect(safeEqual('', 'a')).toBe(false);
    expect(safeEqual('é', 'e')).toBe(false);
  });
});

describe('cappedBackoff', () => {
  const noJitter = () => 1; // random() → 1: the full delay
  const fullJitter = () => 0; // random() → 0: the most jitter takes off

  it('doubles from the base per attempt', () => {
    expect([1, 2, 3, 4, 5].map((n) => cappedBackoff(n, 1000, 30_000, noJitter))).toEqual([
      1000, 2000, 4000, 8000, 16000,
    ]);
    expect(cappedBackoff(0, 1000, 30_000, noJitter)).toBe(1000);
  });

  it('never exceeds the cap of 30 s, however many attempts', () => {
    for (const n of [6, 10, 50, 1000, 10_000]) {
      expect(cappedBackoff(n, 1000, 30_000, noJitter)).toBe(30_000);
      expect(cappedBackoff(n)).toBeLessThanOrEqual(30_000);
    }
    expect(cappedBackoff(2000)).toBeGreaterThan(0);
  });

  it('jitter only shortens, by at most 20 %', () => {
    for (const n of [1, 3, 8, 100]) {
      const full = cappedBackoff(n, 1000, 30_000, noJitter);
      const shortest = cappedBackoff(n, 1000, 30_000, fullJitter);
      expect(shortest).toBe(Math.round(full * 0.8));
      for (let i = 0; i < 50; i++) {
        const delay = cappedBackoff(n);
        expect(delay).toBeLessThanOrEqual(full);
        expect(delay).toBeGreaterThanOrEqual(shortest);
      }
    }
  });

  it('grows with the attempts (before the cap) even with jitter', () => {
    const delays = [1, 2, 3, 4, 5].map((n) => cappedBackoff(n, 1000, 30_000, noJitter));
    const jittered = [1, 2, 3, 4, 5].map((n) => cappedBackoff(n, 1000, 30_000, fullJitter));
    for (let i = 1; i < delays.length; i++) {
      expect(jittered[i]).toBeGreaterThan(delays[i - 1] * 0.8);
      expect(delays[i]).toBe(delays[i - 1] * 2);
    }
  });
});

describe('customerMessage', () => {
  const base = {
    externalId: 'A-1001',
    status: 'dispatched',
    promisedBy: new Date('2024-05-01T12:00:00.000Z'),
    trackingUrl: 'https://track.example.com/t/abc123',
  };

  it('English: names the order, the status and the tracking link; contactless note only when contactless', () => {
    const contactless = customerMessage({ ...base, locale: 'en', contactless: true });
    expect(contactless.subject).toContain('A-1001');
    expect(contactless.text).toContain('A-1001');
    expect(contactless.text).toContain('dispatched');
    expect(contactless.text).toContain('handed to the carrier');
    expect(contactless.text).toContain('https://track.example.com/t/abc123');
    expect(contactless.text).toContain('2024-05-01T12:00:00.000Z');
    expect(contactless.text).toMatch(/contactless/i);

    const handed = customerMessage({ ...base, locale: 'en', contactless: false });
    expect(handed.text).toContain('A-1001');
    expect(handed.text).toContain('https://track.example.com/t/abc123');
    expect(handed.text).not.toMatch(/contactless/i);
  });

  it('Simplified Chinese: the same facts in Chinese; contactless note only when contactless', () => {
    const contactless = customerMessage({ ...base, locale: 'zh-CN', contactless: true });
    expect(contactless.subject).toContain('A-1001');
    expect(contactless.subject).toContain('订单');
    expect(contactless.text).toContain('A-1001');
    expect(contactless.text).toContain('dispatched');
    expect(contactless.text).toContain('已交付承运商');
    expect(contactless.text).toContain('https://track.example.com/t/abc123');
    expect(contactless.text).toContain('无接触');
    expect(contactless.text).not.toMatch(/contactless/i);

    const handed = customerMessage({ ...base, locale: 'zh-CN', contactless: false });
    expect(handed.text).toContain('A-1001');
    expect(handed.text).toContain('https://track.example.com/t/abc123');
    expect(handed.text).not.toContain('无接触');
  });

  it('has wording for every status and timeline event, different per status', () => {
    const statuses = [
      'received',
      'allocated',
      'backordered',
      'on_hold',
      'dispatched',
      'in_transit',
      'out_for_delivery',
      'failed_attempt',
      'delivered',
      'cancelled',
      'failed',
      'retried',
    ];
    for (const locale of ['en', 'zh-CN']) {
      const texts = statuses.map(
        (status) => customerMessage({ ...base, status, locale, contactless: false }).subject,
      );
      expect(new Set(texts).size, locale).toBe(statuses.length);
    }
  });

  it('an unknown locale falls back to Chinese', () => {
    const message = customerMessage({ ...base, status: 'delivered', locale: 'fr', contactless: false });
    expect(message.text).toContain('已送达');
    expect(message.text).toContain('A-1001');
  });
});
