import type { Logger } from 'pino';
import type { CustomerMessage, NotificationProvider } from './types.js';

/**
 * The default when no SMS provider or SMTP server is configured: the message is recorded in the
 * notifications table (by the worker) and logged, not sent.
 */
export function recordingProvider(log: Logger): NotificationProvider {
  return {
    name: 'recording',
    async send(message: CustomerMessage) {
      log.info(
        { channel: message.channel, idempotencyKey: message.idempotencyKey, subject: message.subject },
        'customer message recorded (no provider configured)',
      );
    },
  };
}
