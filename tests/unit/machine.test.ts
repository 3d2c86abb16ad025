import { describe, expect, it } from 'vitest';
import { outboxMessages, messageKey, reachableChannels, toldStatus } from '../../src/domain/notify.js';
import { callInFlight, IN_FLIGHT_GRACE_MS, mayStillLand, rollUp } from '../../src/domain/parcels.js';
import { CANCELLABLE, EFFECTS, canTransition, ORDER_STATUSES } from '../../src/domain/status.js';

describe('the status machine’s effects', () => {
  it('entering failed or cancelled releases stock and cancels bookings; dispatched consumes stock', () => {
    expect(EFFECTS.failed).toEqual({ releaseStock: true, cancelBookings: true });
    expect(EFFECTS.cancelled).toEqual({ releaseStock: true, cancelBookings: true });
    expect(EFFECTS.dispatched).toEqual({ consumeStock: true });
    for (const status of ORDER_STATUSES.filter((s) => !['failed', 'cancelled', 'dispatched'].includes(s))) {
      expect(EFFECTS[status], status).toBeUndefined();
    }
  });

  it('cancellable statuses are exactly those the machine lets move to cancelled', () => {
    expect([...CANCELLABLE].sort()).toEqual(['allocated', 'backordered', 'on_hold', 'received']);
    for (const s of CANCELLABLE) expect(canTransition(s, 'cancelled')).toBe(true);
  });

  it('a held order that only a restock can fill may wait backordered; nothing moves back to waiting once allocated', () => {
    expect(canTransition('on_hold', 'backordered')).toBe(true);
    expect(canTransition('received', 'backordered')).toBe(true);
    expect(canTransition('backordered', 'allocated')).toBe(true);
    for (const s of ['allocated', 'dispatched', 'in_transit', 'delivered'] as const)
      expect(canTransition(s, 'backordered'), s).toBe(false);
  });
});

describe('the parcel roll-up', () => {
  const d = (iso: string) => new Date(iso);
  it('delivered once every live parcel is, at the last parcel’s time', () => {
    const parcels = [
      { status: 'delivered' as const, deliveredAt: d('2026-01-02T00:00:00Z') },
      { status: 'delivered' as const, deliveredAt: d('2026-01-03T00:00:00Z') },
      { status: 'cancelled' as const, deliveredAt: null },
    ];
    expect(rollUp('in_transit', parcels)).toEqual({
      status: 'delivered',
      deliveredAt: d('2026-01-03T00:00:00Z'),
    });
  });

  it('in_transit once any parcel moves, from dispatched only', () => {
    const parcels = [
      { status: 'delivered' as const, deliveredAt: d('2026-01-02T00:00:00Z') },
      { status: 'booked' as const, deliveredAt: null },
    ];
    expect(rollUp('dispatched', parcels)).toEqual({ status: 'in_transit' });
    expect(rollUp('in_transit', parcels)).toBeNull();
    expect(rollUp('dispatched', [{ status: 'booked', deliveredAt: null }])).toBeNull();
  });
});

describe('a booking call that may still land', () => {
  it('until the carrier timeout plus the grace has passed since it started', () => {
    const started = new Date('2026-01-31T08:00:00.000Z');
    const after = (ms: number) => new Date(started.getTime() + ms);
    expect(mayStillLand(started, after(1000 + IN_FLIGHT_GRACE_MS - 1), 1000)).toBe(true);
    expect(mayStillLand(started, after(1000 + IN_FLIGHT_GRACE_MS), 1000)).toBe(false);
  });

  it('is in flight while the latest attempt is pending and may land, whatever an earlier read of the parcel said', () => {
    const started = new Date('2026-01-31T08:00:00.000Z');
    const after = (ms: number) => new Date(started.getTime() + ms);
    expect(callInFlight({ outcome: 'pending', at: started }, after(10), 1000)).toBe(true);
    expect(callInFlight({ outcome: 'pending', at: started }, after(1000 + IN_FLIGHT_GRACE_MS), 1000)).toBe(
      false,
    );
    expect(callInFlight({ outcome: 'transient', at: started }, after(10), 1000)).toBe(false);
    expect(callInFlight(undefined, after(10), 1000)).toBe(false);
  });
});

describe('who is told, and under which key', () => {
  const order = {
    id: 'o1',
    attempt: 1,
    externalId: 'A-1',
    customer: { phone: '+8613800000000', email: 'a@example.com' },
    notifyChannels: ['sms', 'email'],
    locale: 'en',
    promisedBy: new Date('2026-01-31T08:00:00.000Z'),
    trackingToken: 'tok',
    contactless: true,
  };

  it('channels the customer asked for and has a contact for', () => {
    expect(reachableChannels({ phone: '+1' }, ['sms', 'email'])).toEqual(['sms']);
    expect(reachableChannels({ phone: '+1', email: 'x@y' }, ['email'])).toEqual(['email']);
  });

  it('keys carry the attempt from the second on, and the n-th repeat of a timeline event', () => {
    expect(messageKey('o1', 1, 'received', 'sms')).toBe('o1:received:sms');
    expect(messageKey('o1', 2, 'received', 'sms')).toBe('o1:2:received:sms');
    expect(toldStatus('failed_attempt', 1)).toBe('failed_attempt');
    expect(toldStatus('failed_attempt', 2)).toBe('failed_attempt#2');
  });

  it('renders every message whole at commit time: recipient, text with link and drop-off note, webhook body', () => {
    const rows = outboxMessages(order, 'failed_attempt#2', new Date('2026-01-30T00:00:00.000Z'), {
      publicUrl: 'http://x',
      webhookUrl: 'http://shop/hook',
    });
    expect(rows.map((r) => r.channel)).toEqual(['sms', 'email', 'webhook']);
    const sms = rows[0].body;
    expect(sms).toMatchObject({
      kind: 'customer',
      to: '+8613800000000',
      idempotencyKey: 'o1:failed_attempt#2:sms',
    });
    if (sms.kind === 'customer') {
      expect(sms.text).toContain('http://x/v1/track/tok');
      expect(sms.text).toContain('A-1');
      expect(sms.text).toContain('Contactless');
    }
    expect(rows[2].body).toEqual({
      kind: 'webhook',
      url: 'http://shop/hook',
      event: {
        type: 'order.status_changed',
        orderId: 'o1',
        externalId: 'A-1',
        status: 'failed_attempt',
        at: '2026-01-30T00:00:00.000Z',
      },
    });
  });
});
