import nodemailer from 'nodemailer';
import { DEFAULT_SMTP_FROM } from '../../config.js';
import { PermanentSendError, type CustomerMessage, type NotificationProvider } from './types.js';

const SMTP_TIMEOUT_MS = 10_000;

/**
 * The email reference (contract, Customer messages): `{orderId}:{status}`, with the attempt from a
 * retry's second attempt on and `{status}#{n}` for repeats — the SMS key rule without the channel.
 */
export function emailReference(idempotencyKey: string): string {
  return idempotencyKey.replace(/:email$/, '');
}

/**
 * Whether an SMTP failure may pass: a 4xx reply (421 busy, 451 try later…) or no reply at all
 * (refused, reset, timed out) is transient; a 5xx reply is the server's final no.
 */
export function isPermanentSmtpFailure(error: unknown): boolean {
  const code = (error as { responseCode?: unknown } | null)?.responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/**
 * Customer email over SMTP (SMTP_URL: smtp:// or smtps://) with nodemailer, over a pool of
 * connections kept open between messages and closed at shutdown.
 */
export function smtpProvider(options: { url: string; from?: string }): NotificationProvider {
  const transport = nodemailer.createTransport({
    url: options.url,
    pool: true,
    maxConnections: 5,
    connectionTimeout: SMTP_TIMEOUT_MS,
    greetingTimeout: SMTP_TIMEOUT_MS,
    socketTimeout: SMTP_TIMEOUT_MS,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  const from = options.from || DEFAULT_SMTP_FROM;
  return {
    name: 'smtp',
    async send(message: CustomerMessage) {
      try {
        await transport.sendMail({
          from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          ...(message.html ? { html: message.html } : {}),
          headers: { 'X-Surgeline-Reference': emailReference(message.idempotencyKey) },
        });
      } catch (error) {
        // nodemailer's message may quote the server's reply, which can name the recipient: keep the code only.
        const { responseCode, code } = error as { responseCode?: number; code?: string };
        const what = responseCode ? `SMTP ${responseCode}` : (code ?? 'connection failed');
        if (isPermanentSmtpFailure(error)) {
          throw new PermanentSendError(`SMTP server refused the message: ${what}`, {
            smtpCode: responseCode!,
          });
        }
        throw new Error(`SMTP send failed: ${what}`);
      }
    },
    async close() {
      transport.close();
    },
  };
}
