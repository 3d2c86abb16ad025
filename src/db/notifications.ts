import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Db } from './client.js';
import { notifications, shops } from './schema.js';
import type { Customer } from './schema.js';

export const CUSTOMER_CHANNELS = ['sms', 'email'] as const;
export type CustomerChannel = (typeof CUSTOMER_CHANNELS)[number];
export type Channel = CustomerChannel | 'webhook';

/** Channels of notify.channels that the customer has a contact for. */
export function reachableChannels(customer: Customer, requested: string[]): CustomerChannel[] {
  return CUSTOMER_CHANNELS.filter(
    (c) => requested.includes(c) && (c === 'sms' ? Boolean(customer.phone) : Boolean(customer.email)),
  );
}

interface NotifiedOrder {
  id: string;
  shopId: string;
  attempt: number;
  customer: Customer;
  notifyChannels: string[];
}

/**
 * Writes the outbox rows for one status change, in the caller's transaction: one per customer
 * channel and one for the shop's webhook. The unique (order, attempt, status, channel) key makes
 * a stage that runs twice write nothing new. Returns the ids to enqueue after commit.
 */
export async function queueNotifications(
  tx: Db,
  order: NotifiedOrder,
  status: string,
  at: Date,
): Promise<string[]> {
  const channels: Channel[] = reachableChannels(order.customer, order.notifyChannels);
  const [shop] = await tx
    .select({ webhookUrl: shops.webhookUrl })
    .from(shops)
    .where(eq(shops.id, order.shopId));
  if (shop?.webhookUrl) channels.push('webhook');
  if (channels.length === 0) return [];
  const rows = await tx
    .insert(notifications)
    .values(
      channels.map((channel) => ({
        id: randomUUID(),
        orderId: order.id,
        attempt: order.attempt,
        status,
        channel,
        at,
      })),
    )
    .onConflictDoNothing()
    .returning({ id: notifications.id });
  return rows.map((r) => r.id);
}
