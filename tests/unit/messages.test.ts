/**
 * The words customers read ("Customer messages" in the contract): every status, timeline event
 * and the `delayed` notice, in both locales, hold the order's externalId, the status in words,
 * the current promise (RFC 3339 UTC) and the tracking link, the drop-off note only for
 * contactless orders, and nothing personal; the HTML part escapes every value; an SMS is short.
 */
import { describe, expect, it } from 'vitest';
import {
  customerMessage,
  escapeHtml,
  LOCALES,
  SMS_MAX_CHARS,
  statusWords,
  TOLD_STATUSES,
  type MessageInput,
} from '../../src/domain/messages.js';
import {
  delayNoticeMessages,
  delayToTell,
  outboxMessages,
  type NotifiedOrder,
} from '../../src/domain/notify.js';
import { ORDER_STATUSES, TIMELINE_ONLY, FAILURE_REASONS } from '../../src/domain/status.js';

const PROMISE = new Date('2026-02-03T08:00:00.000Z');
const ESTIMATE = new Date('2026-02-05T18:30:00.000Z');
const URL = 'https://track.example.com/v1/track/Zx9_3kQw-L0pT8vRmN2aYbc';
const DROP_OFF = { en: 'Contactless delivery', 'zh-CN': '无接触配送' };

const base: MessageInput = {
  externalId: 'A-10023',
  status: 'received',
  locale: 'en',
  promisedBy: PROMISE,
  trackingUrl: URL,
  contactless: false,
};

const order: NotifiedOrder & Record<string, unknown> = {
  id: '0b6f3c9e-5d2a-4f7e-9c1b-2a3d4e5f6a7b',
  attempt: 1,
  externalId: 'A-10023',
  customer: { phone: '+8613912345678', email: 'zebulon.quix@example.org' },
  notifyChannels: ['sms', 'email'],
  locale: 'en',
  promisedBy: PROMISE,
  trackingToken: 'Zx9_3kQw-L0pT8vRmN2aYbc',
  contactless: true,
  // What else an order row holds: none of it may reach a message.
  shippingAddress: { region: 'shanghai-pudong', line1: '77 Marmaladeweg Lane', city: 'Obscurograd' },
};
const PERSONAL = [
  'Zebulon',
  'Quixotepage',
  '+8613912345678',
  '13912345678',
  'zebulon.quix@example.org',
  'Marmaladeweg',
  'Obscurograd',
];

describe('templates', () => {
  it('cover every order status and timeline event, plus the delayed notice', () => {
    expect([...TOLD_STATUSES].sort()).toEqual([...ORDER_STATUSES, ...TIMELINE_ONLY, 'delayed'].sort());
  });

  for (const locale of LOCALES) {
    describe(locale, () => {
      for (const status of TOLD_STATUSES) {
        it(`${status}: externalId, status in words, promise and link in subject/text/html/sms`, () => {
          const m = customerMessage({ ...base, locale, status, estimatedDeliveryAt: ESTIMATE });
          const words = statusWords(locale, status);
          expect(m.subject).toContain('A-10023');
          for (const part of [m.text, m.sms, m.html]) {
            expect(part).toContain('A-10023');
            expect(part).toContain(escapeHtml(words));
            expect(part).toContain(PROMISE.toISOString());
            expect(part).toContain(URL);
            expect(part).not.toContain(DROP_OFF[locale]);
          }
          // Every time in a message is RFC 3339 UTC.
          for (const time of m.text.match(/\d{4}-\d\d-\d\dT[\d:.]+Z?/g) ?? [])
            expect(time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        });
      }

      it('the drop-off note only for contactless orders, in every part', () => {
        for (const status of TOLD_STATUSES) {
          const m = customerMessage({ ...base, locale, status, contactless: true });
          for (const part of [m.text, m.sms, m.html]) expect(part, status).toContain(DROP_OFF[locale]);
        }
      });

      it('words differ per status (subjects and texts)', () => {
        const all = TOLD_STATUSES.map((status) => customerMessage({ ...base, locale, status }));
        expect(new Set(all.map((m) => m.subject)).size).toBe(TOLD_STATUSES.length);
        expect(new Set(all.map((m) => m.text)).size).toBe(TOLD_STATUSES.length);
      });

      it('SMS and email say the same words: the SMS is the text on one line', () => {
        for (const status of TOLD_STATUSES) {
          const m = customerMessage({ ...base, locale, status, contactless: true });
          expect(m.sms).not.toContain('\n');
          const [headline, ...rest] = m.text.split('\n');
          expect(m.sms.startsWith(headline.replace(/ ?[(（][^()（）]*[)）](?=[.。]$)/, ''))).toBe(true);
          for (const line of rest) expect(m.sms).toContain(line);
        }
      });

      it('an SMS stays short, also with the longest externalId', () => {
        for (const status of TOLD_STATUSES) {
          for (const externalId of ['A-1', 'X'.repeat(100)]) {
            const m = customerMessage({
              ...base,
              locale,
              status,
              externalId,
              contactless: true,
              failureReason: 'carrier_failed',
              estimatedDeliveryAt: ESTIMATE,
            });
            expect(m.sms.length, `${status} ${externalId.length}`).toBeLessThanOrEqual(SMS_MAX_CHARS);
          }
        }
      });

      it('delay notices read as delays with the estimate', () => {
        for (const status of ['on_hold', 'backordered', 'failed_attempt']) {
          const m = customerMessage({ ...base, locale, status });
          expect(m.text).toContain(locale === 'en' ? 'is delayed' : '延迟');
          expect(m.text).toContain(
            locale === 'en' ? `New estimate: ${PROMISE.toISOString()}` : '新的预计送达时间',
          );
        }
        const delayed = customerMessage({
          ...base,
          locale,
          status: 'delayed',
          estimatedDeliveryAt: ESTIMATE,
        });
        for (const part of [delayed.text, delayed.sms, delayed.html]) {
          expect(part).toContain(ESTIMATE.toISOString());
          expect(part).toContain(PROMISE.toISOString());
        }
      });

      it('a failed order says why, when the reason is known', () => {
        const texts = FAILURE_REASONS.map(
          (failureReason) => customerMessage({ ...base, locale, status: 'failed', failureReason }).text,
        );
        expect(new Set(texts).size).toBe(FAILURE_REASONS.length);
        const unknown = customerMessage({ ...base, locale, status: 'failed', failureReason: 'mystery' });
        expect(unknown.text).toContain(statusWords(locale, 'failed'));
      });
    });
  }

  it('the n-th repeat (`failed_attempt#2`) reads as its status', () => {
    expect(customerMessage({ ...base, status: 'failed_attempt#2' }).text).toBe(
      customerMessage({ ...base, status: 'failed_attempt' }).text,
    );
  });

  it('an unknown locale reads Chinese', () => {
    expect(customerMessage({ ...base, locale: 'fr' }).text).toContain('您的订单');
  });
});

describe('HTML part', () => {
  it('escapes every interpolated value: a <script> externalId stays text', () => {
    const evil = '<script>alert("x")</script>&\'';
    for (const locale of LOCALES) {
      const m = customerMessage({
        ...base,
        locale,
        externalId: evil,
        trackingUrl: 'https://t.example/v1/track/a"onmouseover="x',
      });
      expect(m.html).not.toContain('<script');
      expect(m.html).not.toContain('"onmouseover');
      expect(m.html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
      expect(m.html).toMatch(/^<!doctype html>/);
      expect(m.html).not.toMatch(/<img|<link|src=|url\(|@import/i);
    }
  });
});

describe('outbox rows', () => {
  const ctx = { publicUrl: 'https://track.example.com', webhookUrl: 'https://shop.example/hook' };

  it('SMS rows carry the short text, email rows subject, text and html; no personal data beyond the recipient', () => {
    const rows = outboxMessages(order, 'dispatched', new Date(), ctx);
    const [sms, email] = rows.map((r) => r.body);
    if (sms.kind !== 'customer' || email.kind !== 'customer') throw new Error('customer rows first');
    expect(sms.to).toBe('+8613912345678');
    expect(sms.html).toBeUndefined();
    expect(sms.text).not.toContain('\n');
    expect(email.to).toBe('zebulon.quix@example.org');
    expect(email.html).toContain('A-10023');
    for (const body of [sms, email]) {
      const { to: _to, ...told } = body;
      const rendered = JSON.stringify(told);
      for (const value of PERSONAL) expect(rendered, value).not.toContain(value);
      expect(body.text).toContain(URL);
    }
  });

  it('a delayed notice goes to the customer channels only, with the estimate, keyed per parcel', () => {
    const first = delayNoticeMessages(order, 1, ESTIMATE, ctx.publicUrl);
    expect(first.status).toBe('delayed');
    expect(first.rows.map((r) => r.channel)).toEqual(['sms', 'email']);
    for (const { body } of first.rows) {
      if (body.kind !== 'customer') throw new Error('customer rows only');
      expect(body.text).toContain(ESTIMATE.toISOString());
      expect(body.idempotencyKey).toMatch(/:delayed:(sms|email)$/);
    }
    const second = delayNoticeMessages(order, 2, ESTIMATE, ctx.publicUrl);
    expect(second.status).toBe('delayed#2');
  });

  it('a delay is told when the estimate breaks the promise and no other parcel told as late a date', () => {
    const h = (n: number) => new Date(PROMISE.getTime() + n * 3_600_000);
    expect(delayToTell(PROMISE, null, [])).toBe(false);
    expect(delayToTell(PROMISE, PROMISE, [])).toBe(false);
    expect(delayToTell(PROMISE, h(-1), [])).toBe(false);
    expect(delayToTell(PROMISE, h(2), [])).toBe(true);
    expect(delayToTell(PROMISE, h(2), [h(-5), null])).toBe(true); // others on time
    expect(delayToTell(PROMISE, h(2), [h(3)])).toBe(false); // a later date was told
    expect(delayToTell(PROMISE, h(2), [h(1.5)])).toBe(false); // within the slack: one notice
    expect(delayToTell(PROMISE, h(30), [h(2)])).toBe(true); // much later: told again
  });
});
