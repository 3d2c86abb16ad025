/** How the SMS and SMTP adapters read a provider's answer (contract, Customer messages). */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { OutboundResult } from '../../src/integrations/http.js';
import {
  classifySmsAnswer,
  MAX_SMS_RETRY_AFTER_MS,
  parseRetryAfter,
} from '../../src/integrations/notify/sms-http.js';
import { emailReference, isPermanentSmtpFailure } from '../../src/integrations/notify/smtp.js';

const answer = (status: number, headers: Record<string, string> = {}): OutboundResult => ({
  kind: 'answer',
  status,
  headers: new Headers(headers),
  text: '',
});

describe('SMS answers', () => {
  it('2xx is sent', () => {
    expect(classifySmsAnswer(answer(200)).kind).toBe('sent');
    expect(classifySmsAnswer(answer(202)).kind).toBe('sent');
  });

  it('429 waits its Retry-After (seconds or a date), capped; 1 s when it has none', () => {
    expect(classifySmsAnswer(answer(429, { 'retry-after': '1' }))).toEqual({
      kind: 'retry_after',
      delayMs: 1000,
      httpStatus: 429,
    });
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('86400', now)).toBe(MAX_SMS_RETRY_AFTER_MS);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(classifySmsAnswer(answer(429))).toMatchObject({ kind: 'retry_after', delayMs: 1000 });
  });

  it('5xx, 3xx (never followed), timeouts and refused connections are retried', () => {
    for (const status of [500, 502, 503, 301, 302, 307])
      expect(classifySmsAnswer(answer(status)).kind).toBe('transient');
    expect(classifySmsAnswer({ kind: 'timeout', detail: 'no answer within 10 ms' }).kind).toBe('transient');
    expect(classifySmsAnswer({ kind: 'connection', detail: 'connection failed: ECONNREFUSED' }).kind).toBe(
      'transient',
    );
  });

  it('any other 4xx is given up', () => {
    for (const status of [400, 401, 403, 404, 409, 422])
      expect(classifySmsAnswer(answer(status))).toEqual({ kind: 'permanent', httpStatus: status });
  });
});

describe('SMTP failures', () => {
  it('5xx replies are permanent; 4xx replies and connection errors are transient', () => {
    expect(isPermanentSmtpFailure({ responseCode: 550 })).toBe(true);
    expect(isPermanentSmtpFailure({ responseCode: 554 })).toBe(true);
    expect(isPermanentSmtpFailure({ responseCode: 421 })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 451 })).toBe(false);
    expect(isPermanentSmtpFailure({ code: 'ECONNECTION' })).toBe(false);
    expect(isPermanentSmtpFailure(new Error('socket closed'))).toBe(false);
  });

  it('the email reference is the SMS key rule without the channel', () => {
    expect(emailReference('o1:received:email')).toBe('o1:received');
    expect(emailReference('o1:2:out_for_delivery#2:email')).toBe('o1:2:out_for_delivery#2');
  });
});

describe('notification settings', () => {
  it('SMS and SMTP are unset by default, with the documented sender and rates', () => {
    const config = loadConfig({});
    expect(config.sms).toEqual({ url: undefined, token: undefined });
    expect(config.smtp).toEqual({ url: undefined, from: 'Surgeline <no-reply@localhost>' });
    expect(config.notificationRates).toEqual({ sms: 50, email: 20, webhook: 0 });
  });

  it('reads SMS_PROVIDER_URL / SMS_PROVIDER_TOKEN, SMTP_URL / SMTP_FROM and the rates', () => {
    const config = loadConfig({
      SMS_PROVIDER_URL: 'https://sms.example.com/v1/messages',
      SMS_PROVIDER_TOKEN: 'tok',
      SMTP_URL: 'smtps://user:pass@mail.example.com:465',
      SMTP_FROM: 'Shop <shop@example.com>',
      SMS_RATE_PER_SECOND: '5',
      EMAIL_RATE_PER_SECOND: '0',
      WEBHOOK_RATE_PER_SECOND: '100',
    });
    expect(config.sms).toEqual({ url: 'https://sms.example.com/v1/messages', token: 'tok' });
    expect(config.smtp).toEqual({
      url: 'smtps://user:pass@mail.example.com:465',
      from: 'Shop <shop@example.com>',
    });
    expect(config.notificationRates).toEqual({ sms: 5, email: 0, webhook: 100 });
  });

  it('refuses a bad URL with one line naming the variable (and never echoes SMTP credentials)', () => {
    expect(() => loadConfig({ SMS_PROVIDER_URL: 'ftp://sms.example.com' })).toThrow(
      /^SMS_PROVIDER_URL must be/,
    );
    expect(() => loadConfig({ SMS_PROVIDER_URL: 'not a url' })).toThrow(ConfigError);
    let message = '';
    try {
      loadConfig({ SMTP_URL: 'http://user:s3cret@mail.example.com' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^SMTP_URL must be a smtp:\/\/ or smtps:\/\/ URL/);
    expect(message).not.toContain('s3cret');
    expect(() => loadConfig({ SMS_RATE_PER_SECOND: '-1' })).toThrow(/^SMS_RATE_PER_SECOND/);
  });
});
