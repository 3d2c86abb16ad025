import { shopWebhookSignature } from '../../domain/signing.js';
import { outboundCall } from '../http.js';

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
  const result = await outboundCall(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-surgeline-signature': signature },
    body,
    timeoutMs,
  });
  if (result.kind !== 'answer') throw new Error(`shop webhook failed: ${result.detail}`);
  // A 3xx is not followed (the shop's URL is the one it registered) and counts as a failure.
  if (result.status < 200 || result.status >= 300) {
    throw new Error(`shop webhook answered HTTP ${result.status}`);
  }
}
