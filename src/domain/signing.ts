import { createHmac, timingSafeEqual } from 'node:crypto';

export function hmacHex(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

/** `X-Signature` of a carrier event: `sha256=<hex HMAC of the raw body>`. */
export function verifyCarrierSignature(rawBody: string, secret: string, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  return safeEqual(header.slice('sha256='.length), hmacHex(secret, rawBody));
}

/** `X-Surgeline-Signature` of a shop webhook: `t=<unix s>,v1=<hex HMAC of "<t>.<body>">`. */
export function shopWebhookSignature(rawBody: string, secret: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${hmacHex(secret, `${unixSeconds}.${rawBody}`)}`;
}

/** Constant-time string comparison (unequal lengths still take the same path). */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  if (left.length !== right.length) {
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}
