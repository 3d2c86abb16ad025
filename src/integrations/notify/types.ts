/** A message to one customer on one channel. */
export interface CustomerMessage {
  channel: 'sms' | 'email';
  to: string;
  subject: string;
  text: string;
  /** Email only, when the message has an HTML part. */
  html?: string;
  /** `{orderId}:{status}:{channel}`, per attempt from a retry's second attempt on: the provider's dedupe key. */
  idempotencyKey: string;
}

export interface NotificationProvider {
  readonly name: string;
  /**
   * Resolves when the provider accepted the message. Throws to be retried with backoff; throws a
   * PermanentSendError when no retry can help, a RetryLaterError when the provider named a time.
   */
  send(message: CustomerMessage): Promise<void>;
  /** Releases pooled connections (SMTP), at shutdown. */
  close?(): Promise<void>;
}

/**
 * The provider refused the message for good (an SMS 4xx other than 429, an SMTP 5xx): the row is
 * given up at once and logged. `detail` names what was refused, never the recipient or the text.
 */
export class PermanentSendError extends Error {
  constructor(
    message: string,
    readonly detail: Record<string, string | number> = {},
  ) {
    super(message);
    this.name = 'PermanentSendError';
  }
}

/** The provider asked us to come back later (SMS 429 with Retry-After): waited out without spending a retry. */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
    this.name = 'RetryLaterError';
  }
}
