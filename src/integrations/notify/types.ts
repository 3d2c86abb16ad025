/** A message to one customer on one channel. */
export interface CustomerMessage {
  channel: 'sms' | 'email';
  to: string;
  subject: string;
  text: string;
  /** `{orderId}:{status}:{channel}`, per attempt from a retry's second attempt on: the provider's dedupe key. */
  idempotencyKey: string;
}

/** A send that may work later (provider down, rate-limited): the job is retried with backoff. */
export class TransientSendError extends Error {}

export interface NotificationProvider {
  readonly name: string;
  /** Resolves when the provider accepted the message; throws TransientSendError to be retried. */
  send(message: CustomerMessage): Promise<void>;
}
