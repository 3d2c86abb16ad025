/**
 * Customer messages on their channels (contract, Customer messages), end to end: the real API and
 * workers, a carrier simulator moving each order through its statuses, an HTTP SMS provider
 * (node:http), a real SMTP server (smtp-server) and a shop webhook receiver. Each channel has its
 * own queue (`notification.sms`, `notification.email`, `notification.webhook`), so the behaviour
 * of one provider — 429, 400, 503 for ever, SMTP 421/451 — is judged by what the others receive.
 *
 * Who the customer is picks how the providers treat the order's messages (see the constants).
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { notifications } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';
import { sendNotification } from '../../src/steps/notify.js';
import { TOPOLOGY } from '../../src/queues/topology.js';
import { orderBody, placeOrder, seedShopWithStock, startSimulatedCarrier } from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { startReceiver } from '../helpers/receiver.js';
import { startSmsProvider, type SmsAnswer } from '../helpers/sms-provider.js';
import { startSmtpSink, type ReceivedMail } from '../helpers/smtp-sink.js';

const STATUSES = ['received', 'allocated', 'dispatched', 'in_transit', 'delivered'];
const SMS_TOKEN = 'sms-token-abc123';

const PHONE_OK = '+8613800000010';
/** Each message's first call is answered 429 with Retry-After: 1. */
const PHONE_429 = '+8613800000011';
/** Answered 400 for ever: given up at once. */
const PHONE_400 = '+8613800000012';
/** Answered 503 for ever: retried, never sent. */
const PHONE_503 = '+8613800000013';
const EMAIL_OK = 'ok.customer@example.com';
/** Each message is refused 421, then 451, then accepted. */
const EMAIL_FLAKY = 'flaky.customer@example.com';
const EMAIL_503_ORDER = 'steady.customer@example.com';
/** Refused 550 for ever: given up at once. */
const EMAIL_REFUSED = 'refused.customer@example.com';

describe('customer messages on their channels', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };
  let sms: Awaited<ReturnType<typeof startSmsProvider>>;
  let smtp: Awaited<ReturnType<typeof startSmtpSink>>;
  let hooks: Awaited<ReturnType<typeof startReceiver>>;
  const lines: string[] = [];
  const seen429 = new Set<string>();
  const smtpRefusals = new Map<string, number>();

  beforeAll(async () => {
    db = await testDatabase();
    sms = await startSmsProvider((call): SmsAnswer => {
      const to = call.json.to;
      const key = String(call.headers['idempotency-key']);
      if (to === PHONE_400) return { status: 400 };
      if (to === PHONE_503) return { status: 503 };
      if (to === PHONE_429 && !seen429.has(key)) {
        seen429.add(key);
        return { status: 429, headers: { 'retry-after': '1' } };
      }
      return { status: 200 };
    });
    smtp = await startSmtpSink((mail: ReceivedMail) => {
      if (mail.to.includes(EMAIL_REFUSED)) return 550;
      if (!mail.to.includes(EMAIL_FLAKY)) return undefined;
      const reference = mail.headers.get('x-surgeline-reference') ?? '';
      const refused = smtpRefusals.get(reference) ?? 0;
      if (refused >= 2) return undefined;
      smtpRefusals.set(reference, refused + 1);
      return refused === 0 ? 421 : 451;
    });
    hooks = await startReceiver();
    const log = createLogger('info', { write: (line: string) => void lines.push(line) });
    server = await startTestServer(db.database, {
      env: {
        SMS_PROVIDER_URL: sms.url,
        SMS_PROVIDER_TOKEN: SMS_TOKEN,
        SMTP_URL: smtp.url,
        SMTP_FROM: 'Surgeline Test <notify@surgeline.test>',
      },
      overrides: { log },
    });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'sim-notify',
      webhookSecret: 'carrier-secret-123',
      apiKey: 'carrier-key',
      eventsBaseUrl: server.url,
      progress: { inTransitAfterMs: 200, deliveredAfterMs: 400 },
    });
    shop = await seedShopWithStock(server.app, {
      shop: { webhookUrl: hooks.url, rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-notify-channels',
      stock: { 'MASK-N95': 1000 },
    });
  });

  afterAll(async () => {
    await server?.close();
    await carrier?.close();
    await sms?.close();
    await smtp?.close();
    await hooks?.close();
    await db?.drop();
  });

  async function order(customer: { phone?: string; email?: string }, channels = ['sms', 'email']) {
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ customer: { name: 'Li Wei', ...customer }, notify: { channels } }),
    );
    return placed.id as string;
  }

  const smsFor = (key: string) => sms.accepted().filter((c) => c.headers['idempotency-key'] === key);
  const mailFor = (reference: string) =>
    smtp.accepted.filter((m) => m.headers.get('x-surgeline-reference') === reference);
  const hooksFor = (orderId: string, status: string) =>
    hooks.received.filter((r) => r.json.orderId === orderId && r.json.status === status);

  async function rowOf(orderId: string, status: string, channel: 'sms' | 'email' | 'webhook') {
    const [row] = await server.ctx.db
      .select()
      .from(notifications)
      .where(
        and(
          eq(notifications.orderId, orderId),
          eq(notifications.status, status),
          eq(notifications.channel, channel),
        ),
      );
    return row;
  }

  it('tells every status on SMS, email and the shop webhook, once each, in the contract formats', async () => {
    const orderId = await order({ phone: PHONE_OK, email: EMAIL_OK });
    await waitFor(
      async () =>
        STATUSES.every(
          (s) =>
            smsFor(`${orderId}:${s}:sms`).length > 0 &&
            mailFor(`${orderId}:${s}`).length > 0 &&
            hooksFor(orderId, s).length > 0,
        ),
      'every status on every channel',
      30_000,
    );
    for (const status of STATUSES) {
      const [message] = smsFor(`${orderId}:${status}:sms`);
      expect(message.headers.authorization).toBe(`Bearer ${SMS_TOKEN}`);
      expect(message.headers['content-type']).toMatch(/^application\/json/);
      expect(Object.keys(message.json).sort()).toEqual(['text', 'to']);
      expect(message.json.to).toBe(PHONE_OK);
      // A row is marked sent once its provider's answer is back, a moment after the message landed.
      for (const channel of ['sms', 'email'] as const)
        await waitFor(
          async () => (await rowOf(orderId, status, channel)).state === 'sent',
          `${status} ${channel} row sent`,
        );
      const smsRow = await rowOf(orderId, status, 'sms');
      if (smsRow.body.kind !== 'customer') throw new Error('an SMS row holds a customer message');
      expect(message.json.text).toBe(smsRow.body.text);
      expect(smsRow.state).toBe('sent');

      const [mail] = mailFor(`${orderId}:${status}`);
      const emailRow = await rowOf(orderId, status, 'email');
      if (emailRow.body.kind !== 'customer') throw new Error('an email row holds a customer message');
      expect(mail.to).toEqual([EMAIL_OK]);
      expect(mail.from).toBe('notify@surgeline.test');
      expect(mail.headers.get('subject')).toBe(emailRow.body.subject);
      expect(mail.text?.replace(/\r\n/g, '\n').trim()).toBe(emailRow.body.text.trim());
      const html = (emailRow.body as { html?: string }).html;
      if (html) expect(mail.html?.replace(/\r\n/g, '\n').trim()).toBe(html.replace(/\r\n/g, '\n').trim());
      expect(emailRow.state).toBe('sent');

      expect(hooksFor(orderId, status)[0].headers['x-surgeline-signature']).toMatch(
        /^t=\d+,v1=[0-9a-f]{64}$/,
      );
    }
    // Exactly one accepted per (order, status, channel).
    for (const status of STATUSES) {
      expect(smsFor(`${orderId}:${status}:sms`)).toHaveLength(1);
      expect(mailFor(`${orderId}:${status}`)).toHaveLength(1);
      expect(hooksFor(orderId, status)).toHaveLength(1);
    }
  });

  it('sends nothing more when the step runs again or the notification is enqueued again', async () => {
    const orderId = await order({ phone: PHONE_OK, email: EMAIL_OK });
    await waitFor(
      async () => smsFor(`${orderId}:received:sms`).length > 0 && mailFor(`${orderId}:received`).length > 0,
      'the received SMS and email',
    );
    const ctx = server.ctx;
    for (const channel of ['sms', 'email'] as const) {
      const row = await rowOf(orderId, 'received', channel);
      await waitFor(async () => (await rowOf(orderId, 'received', channel)).state === 'sent', 'row sent');
      // The step twice more, at once.
      const outcomes = await Promise.all([
        sendNotification(ctx, { notificationId: row.id }, false),
        sendNotification(ctx, { notificationId: row.id }, false),
      ]);
      expect(outcomes).toEqual(['skipped', 'skipped']);
      // Its job again: the finished copy removed, a new one added and run by the worker.
      const queue = ctx.queues.notification[channel];
      const jobId = TOPOLOGY.notification.jobId({ notificationId: row.id, channel });
      await waitFor(async () => (await queue.getJobState(jobId)) === 'completed', 'first job completed');
      await queue.remove(jobId);
      await ctx.queues.add('notification', { notificationId: row.id, channel }, { priority: 'standard' });
      await waitFor(async () => (await queue.getJobState(jobId)) === 'completed', 'second job completed');
      expect((await queue.getJob(jobId))?.returnvalue).toBe('skipped');
    }
    expect(smsFor(`${orderId}:received:sms`)).toHaveLength(1);
    expect(mailFor(`${orderId}:received`)).toHaveLength(1);
  });

  it('waits out an SMS 429 Retry-After (no attempt spent), then sends once', async () => {
    const orderId = await order({ phone: PHONE_429 }, ['sms']);
    const key = `${orderId}:received:sms`;
    await waitFor(async () => smsFor(key).length > 0, 'the SMS after its 429');
    const calls = sms.calls.filter((c) => c.headers['idempotency-key'] === key);
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(1000);
    const row = await rowOf(orderId, 'received', 'sms');
    await waitFor(async () => (await rowOf(orderId, 'received', 'sms')).state === 'sent', 'row sent');
    const job = await server.ctx.queues.notification.sms.getJob(
      TOPOLOGY.notification.jobId({ notificationId: row.id, channel: 'sms' }),
    );
    // One attempt: the run that sent it (the 429's wait was a delay, not a failed attempt).
    expect(job?.attemptsMade).toBe(1);
    // The later statuses arrive too, each once.
    await waitFor(async () => smsFor(`${orderId}:delivered:sms`).length > 0, 'the delivered SMS', 30_000);
    for (const status of STATUSES) expect(smsFor(`${orderId}:${status}:sms`)).toHaveLength(1);
  });

  it('gives up an SMS the provider refuses (400) at once and logs it without the phone', async () => {
    const orderId = await order({ phone: PHONE_400 }, ['sms']);
    await waitFor(
      async () => (await rowOf(orderId, 'received', 'sms'))?.state === 'failed',
      'the row given up',
    );
    const key = `${orderId}:received:sms`;
    expect(sms.calls.filter((c) => c.headers['idempotency-key'] === key)).toHaveLength(1);
    const logged = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((entry) => entry.orderId === orderId && entry.channel === 'sms' && entry.status === 'received');
    expect(logged).toMatchObject({ httpStatus: 400, level: 50 });
    expect(lines.some((line) => line.includes(PHONE_400) || line.includes(PHONE_400.slice(1)))).toBe(false);
  });

  it('retries email through SMTP 421 and 451, then it is accepted once', async () => {
    const orderId = await order({ email: EMAIL_FLAKY }, ['email']);
    const reference = `${orderId}:received`;
    await waitFor(async () => mailFor(reference).length > 0, 'the email after 421 and 451', 30_000);
    expect(smtp.attempts.filter((m) => m.headers.get('x-surgeline-reference') === reference)).toHaveLength(3);
    expect(mailFor(reference)).toHaveLength(1);
    await waitFor(async () => (await rowOf(orderId, 'received', 'email')).state === 'sent', 'row sent');
  });

  it('gives up an email the SMTP server refuses (550) at once and logs it without the address', async () => {
    const orderId = await order({ email: EMAIL_REFUSED }, ['email']);
    await waitFor(
      async () => (await rowOf(orderId, 'received', 'email'))?.state === 'failed',
      'the row given up',
    );
    const reference = `${orderId}:received`;
    expect(smtp.attempts.filter((m) => m.headers.get('x-surgeline-reference') === reference)).toHaveLength(1);
    const logged = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((entry) => entry.orderId === orderId && entry.channel === 'email' && entry.status === 'received');
    expect(logged).toMatchObject({ smtpCode: 550, level: 50 });
  });

  it('an SMS provider answering 503 for ever does not hold up email or the webhook', async () => {
    const started = Date.now();
    const orderId = await order({ phone: PHONE_503, email: EMAIL_503_ORDER });
    await waitFor(
      async () =>
        STATUSES.every((s) => mailFor(`${orderId}:${s}`).length > 0 && hooksFor(orderId, s).length > 0),
      'email and webhook for every status',
      15_000,
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(15_000);
    const smsCalls = sms.calls.filter((c) => String(c.headers['idempotency-key']).startsWith(`${orderId}:`));
    expect(smsCalls.length).toBeGreaterThan(0);
    expect(smsCalls.every((c) => c.status === 503)).toBe(true);
    expect((await rowOf(orderId, 'received', 'sms')).state).toBe('pending');
  });

  it('logs no customer name, phone or email', () => {
    for (const secret of [
      PHONE_OK,
      PHONE_429,
      PHONE_400,
      PHONE_503,
      EMAIL_OK,
      EMAIL_FLAKY,
      EMAIL_503_ORDER,
      EMAIL_REFUSED,
      'Li Wei',
    ]) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});

describe('a channel rate limit', () => {
  let db: TestDatabase;
  let server: TestServer;
  let sms: Awaited<ReturnType<typeof startSmsProvider>>;
  let smtp: Awaited<ReturnType<typeof startSmtpSink>>;

  beforeAll(async () => {
    db = await testDatabase();
    sms = await startSmsProvider();
    smtp = await startSmtpSink();
    server = await startTestServer(db.database, {
      env: {
        SMS_PROVIDER_URL: sms.url,
        SMTP_URL: smtp.url,
        SMS_RATE_PER_SECOND: '2',
        EMAIL_RATE_PER_SECOND: '1000',
      },
    });
  });

  afterAll(async () => {
    await server?.close();
    await sms?.close();
    await smtp?.close();
    await db?.drop();
  });

  it('holds SMS to SMS_RATE_PER_SECOND while email goes at its own pace', async () => {
    const shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-rate',
      stock: { 'MASK-N95': 100 },
    });
    // No carrier: each order is received, allocated, then fails — three messages per channel.
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const placed = await placeOrder(
        server.app,
        shop.apiKey,
        orderBody({
          customer: { name: 'Li Wei', phone: PHONE_OK, email: EMAIL_OK },
          notify: { channels: ['sms', 'email'] },
        }),
      );
      ids.push(placed.id);
    }
    await waitFor(async () => smtp.accepted.length >= 6, 'six emails');
    const emailsDoneAt = Date.now();
    await waitFor(async () => sms.accepted().length >= 6, 'six SMS', 30_000);
    // BullMQ's limiter counts jobs as they start, in fixed windows of a second: of six jobs at
    // two a window, the last starts two windows after the first.
    // A job completes a moment after its provider accepted the message (marked sent, then finished).
    const completed = () => server.ctx.queues.notification.sms.getJobs(['completed']);
    await waitFor(async () => (await completed()).length >= 6, 'six SMS jobs completed');
    const jobs = await completed();
    const started = jobs.map((job) => job.processedOn ?? 0).sort((a, b) => a - b);
    expect(started.length).toBeGreaterThanOrEqual(6);
    expect(started[5] - started[0]).toBeGreaterThanOrEqual(1950);
    // At the provider (a send takes a varying moment after its start): never more than two windows' worth in a second.
    const times = sms.accepted().map((c) => c.at);
    for (const t of times) expect(times.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(4);
    expect(emailsDoneAt).toBeLessThan(Math.max(...times));
  });
});
