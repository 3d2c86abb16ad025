import { customerMessage } from './messages.js';

/** Who is told of a status change, on which channel, with which words, under which dedupe key. */
export const CUSTOMER_CHANNELS = ['sms', 'email'] as const;
export type CustomerChannel = (typeof CUSTOMER_CHANNELS)[number];
export type Channel = CustomerChannel | 'webhook';
export type NotificationState = 'pending' | 'sent' | 'failed';

export interface Contact {
  phone?: string;
  email?: string;
}

/** Channels of notify.channels that the customer has a contact for. */
export function reachableChannels(customer: Contact, requested: string[]): CustomerChannel[] {
  return CUSTOMER_CHANNELS.filter(
    (c) => requested.includes(c) && (c === 'sms' ? Boolean(customer.phone) : Boolean(customer.email)),
  );
}

/** The timeline status as told: the n-th repeat of a timeline event (n ≥ 2) is `{status}#{n}`. */
export function toldStatus(status: string, seq: number): string {
  return seq > 1 ? `${status}#${seq}` : status;
}

/** The provider's dedupe key: `{orderId}:{status}:{channel}`, with the attempt from a retry's second on. */
export function messageKey(orderId: string, attempt: number, status: string, channel: string): string {
  return attempt > 1 ? `${orderId}:${attempt}:${status}:${channel}` : `${orderId}:${status}:${channel}`;
}

export function trackingUrl(publicUrl: string, token: string): string {
  return `${publicUrl}/v1/track/${token}`;
}

/** A message as written to the outbox when the status changed: sending reads nothing else. */
export type OutboxMessage =
  | {
      kind: 'customer';
      to: string;
      subject: string;
      /** The SMS on an `sms` row; the email's plain text on an `email` row. */
      text: string;
      /** Email only: the HTML part, sent beside `text`. */
      html?: string;
      idempotencyKey: string;
    }
  | {
      kind: 'webhook';
      url: string;
      event: {
        type: 'order.status_changed';
        orderId: string;
        externalId: string;
        status: string;
        at: string;
      };
    };

export interface NotifiedOrder {
  id: string;
  attempt: number;
  externalId: string;
  customer: Contact;
  notifyChannels: string[];
  locale: string;
  promisedBy: Date;
  trackingToken: string;
  contactless: boolean;
  /** Worded in the `failed` message when known. */
  failureReason?: string | null;
}

/**
 * The outbox rows for one timeline event: one per reachable customer channel, one for the shop's
 * webhook when it has one. `status` is the told status (see toldStatus).
 */
export function outboxMessages(
  order: NotifiedOrder,
  status: string,
  at: Date,
  ctx: { publicUrl: string; webhookUrl: string | null },
): { channel: Channel; body: OutboxMessage }[] {
  const baseStatus = status.split('#')[0];
  const rows: { channel: Channel; body: OutboxMessage }[] = customerRows(order, status, ctx.publicUrl);
  if (ctx.webhookUrl) {
    rows.push({
      channel: 'webhook',
      body: {
        kind: 'webhook',
        url: ctx.webhookUrl,
        event: {
          type: 'order.status_changed',
          orderId: order.id,
          externalId: order.externalId,
          status: baseStatus,
          at: at.toISOString(),
        },
      },
    });
  }
  return rows;
}

/** One row per reachable customer channel: the SMS text, or the email's subject, text and HTML. */
function customerRows(
  order: NotifiedOrder,
  status: string,
  publicUrl: string,
  estimatedDeliveryAt?: Date,
): { channel: CustomerChannel; body: OutboxMessage }[] {
  const message = customerMessage({
    externalId: order.externalId,
    status: status.split('#')[0],
    locale: order.locale,
    promisedBy: order.promisedBy,
    trackingUrl: trackingUrl(publicUrl, order.trackingToken),
    contactless: order.contactless,
    failureReason: order.failureReason,
    estimatedDeliveryAt,
  });
  return reachableChannels(order.customer, order.notifyChannels).map((channel) => {
    const to = (channel === 'sms' ? order.customer.phone : order.customer.email) as string;
    const idempotencyKey = messageKey(order.id, order.attempt, status, channel);
    const body: OutboxMessage =
      channel === 'sms'
        ? { kind: 'customer', to, subject: message.subject, text: message.sms, idempotencyKey }
        : {
            kind: 'customer',
            to,
            subject: message.subject,
            text: message.text,
            html: message.html,
            idempotencyKey,
          };
    return { channel, body };
  });
}

/**
 * A carrier's estimate later than the order's promise: the customer is told at once. A notice,
 * not a status: the order's status and timeline don't change, and the shop's webhook (which
 * reports status changes) is not called.
 */
export function isLate(promisedBy: Date, estimatedDeliveryAt: Date | null): estimatedDeliveryAt is Date {
  return estimatedDeliveryAt !== null && estimatedDeliveryAt.getTime() > promisedBy.getTime();
}

/** Another parcel's estimate within this much of a new one already told the customer that date. */
export const DELAY_NOTICE_SLACK_MS = 3_600_000;

/**
 * Whether a parcel's estimate is a delay to tell: past the promise, and not already told by
 * another parcel of the order whose estimate is as late (give or take DELAY_NOTICE_SLACK_MS, so
 * the parcels of a split order booked a moment apart make one notice, not one each).
 */
export function delayToTell(
  promisedBy: Date,
  estimatedDeliveryAt: Date | null,
  otherEstimates: (Date | null)[],
): estimatedDeliveryAt is Date {
  if (!isLate(promisedBy, estimatedDeliveryAt)) return false;
  const told = estimatedDeliveryAt.getTime() - DELAY_NOTICE_SLACK_MS;
  return !otherEstimates.some(
    (other) => other !== null && isLate(promisedBy, other) && other.getTime() >= told,
  );
}

/**
 * The `delayed` notice of one parcel, told as `delayed` for the attempt's first parcel and
 * `delayed#n` for its n-th (so each parcel is told once, and the provider's dedupe keys differ),
 * on the customer channels only, with the carrier's estimate.
 */
export function delayNoticeMessages(
  order: NotifiedOrder,
  parcelOrdinal: number,
  estimatedDeliveryAt: Date,
  publicUrl: string,
): { status: string; rows: { channel: CustomerChannel; body: OutboxMessage }[] } {
  const status = toldStatus('delayed', parcelOrdinal);
  return { status, rows: customerRows(order, status, publicUrl, estimatedDeliveryAt) };
}
