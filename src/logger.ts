import pino, { type Logger } from 'pino';

/** Customer contact data and addresses never reach the logs. */
const REDACT = [
  'customer.phone',
  'customer.email',
  'customer.name',
  'shippingAddress',
  '*.customer.phone',
  '*.customer.email',
  '*.customer.name',
  '*.shippingAddress',
  'to',
  'req.headers.authorization',
  'req.headers["x-signature"]',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'surgeline' } });
}

export type { Logger };
