import { shopWebhookSignature } from '../../domain/signing.js';

export interface StatusChangedEvent {
  type: 'order.status_changed';
  orderId: string;
  externalId: string;
  status: string;
  at: string;
}

/** POSTs one signed event to the shop; resolves on 2xx, throws otherwise (the job retries). */
export async function postShopWebhook(
  url: string,
  secret: string,
  event: StatusChangedEvent,
  timeoutMs: number,
) {
  const body = JSON.stringify(event);
  const signature = shopWebhookSignature(body, secret, Math.floor(Date.now() / 1000));
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-surgeline-signature': signature },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new Error(`shop webhook answered HTTP ${response.status}`);
}
