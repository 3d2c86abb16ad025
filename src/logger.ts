import pino, { type DestinationStream, type Logger } from 'pino';

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'surgeline' } };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
