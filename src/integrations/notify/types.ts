/** A message to one customer on one channel. */
export interface CustomerMessage {
  channel: 'sms' | 'email';
  to: string;
  subject: string;
  text: string;
  /** `{orderId}:{status}:{channel}`, per attempt from a retry's second attempt on: the provider's dedupe key. */
  idempotencyKey: string;
}

export interface NotificationProvider {
  readonly name: string;
  /** Resolves when the provider accepted the message; throws to be retried with backoff. */
  send(message: CustomerMessage): Promise<void>;
}
