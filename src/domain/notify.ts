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
  | { kind: 'customer'; to: string; subject: string; text: string; idempotencyKey: string }
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
  const rows: { channel: Channel; body: OutboxMessage }[] = [];
  for (const channel of reachableChannels(order.customer, order.notifyChannels)) {
    const to = (channel === 'sms' ? order.customer.phone : order.customer.email) as string;
    const { subject, text } = customerMessage({
      externalId: order.externalId,
      status: baseStatus,
      locale: order.locale,
      promisedBy: order.promisedBy,
      trackingUrl: trackingUrl(ctx.publicUrl, order.trackingToken),
      contactless: order.contactless,
    });
    rows.push({
      channel,
      body: {
        kind: 'customer',
        to,
        subject,
        text,
        idempotencyKey: messageKey(order.id, order.attempt, status, channel),
      },
    });
  }
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
