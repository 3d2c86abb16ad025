/**
 * The tracking link in customer messages ("Customers" in the contract): JSON by default, a small
 * self-contained HTML page for a browser (Accept: text/html), in zh-CN or en by Accept-Language
 * (q-values honoured), else the order's locale — with the status, promise, timeline and each
 * parcel's carrier and tracking number, and none of the customer's personal data.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const SECRET = 'tracking-page-secret';
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const CSP = "default-src 'none'; style-src 'unsafe-inline'";
const UNKNOWN = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

// Distinctive values, so finding one in the page can only mean it leaked.
const CUSTOMER = { name: 'Zebulon Quixotepage', phone: '+8613912345678', email: 'zebulon.quix@example.org' };
const ADDRESS = {
  region: 'shanghai-pudong',
  line1: '77 Marmaladeweg Lane',
  city: 'Obscurograd',
  postalCode: '998877',
  country: 'CN',
};

describe('GET /v1/track/{token}: JSON and the HTML page', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };
  let token: string;
  let zhToken: string;
  let order: {
    id: string;
    events: { status: string; at: string }[];
    shipments: { carrierId: string; trackingNumber: string }[];
  };

  const track = (t: string, headers: Record<string, string> = {}) =>
    server.app.inject({ url: `/v1/track/${t}`, headers });

  const tokenOf = (links: { tracking: string }) => links.tracking.split('/').pop()!;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'page-carrier',
      webhookSecret: SECRET,
      eventsBaseUrl: server.url,
      progress: false,
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-page', stock: { 'MASK-N95': 50 } });
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ customer: CUSTOMER, shippingAddress: ADDRESS, locale: 'en' }),
    );
    token = tokenOf(placed.links);
    await waitForOrderStatus(server.app, shop.apiKey, placed.id, 'dispatched');
    const [parcel] = (await getOrder(server.app, shop.apiKey, placed.id)).shipments;
    const status = await carrier.sendEvent(parcel.trackingNumber, 'in_transit', new Date().toISOString());
    expect(status).toBeLessThan(300);
    order = await waitForOrderStatus(server.app, shop.apiKey, placed.id, 'in_transit');
    zhToken = tokenOf((await placeOrder(server.app, shop.apiKey, orderBody({ locale: 'zh-CN' }))).links);
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  function expectPage(response: LightMyRequestResponse, status = 200): string {
    expect(response.statusCode, response.body).toBe(status);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['content-security-policy']).toBe(CSP);
    expect(String(response.headers.vary)).toMatch(/Accept, Accept-Language/);
    expect(response.body).toMatch(/^<!doctype html>/);
    // Self-contained: nothing loaded from anywhere, no script.
    expect(response.body).not.toMatch(/<script|<link|<img|<iframe|src=|@import|url\(/i);
    return response.body;
  }

  const langOf = (html: string) => /<html lang="([^"]+)">/.exec(html)?.[1];

  it('answers JSON by default: no Accept, */*, application/json, or JSON preferred over HTML', async () => {
    for (const accept of [
      undefined,
      '*/*',
      'application/json',
      'application/json, text/html',
      'text/html;q=0.5, application/json',
    ]) {
      const response = await track(token, accept ? { accept } : {});
      expect(response.statusCode, `${accept}`).toBe(200);
      expect(response.headers['content-type'], `${accept}`).toMatch(/^application\/json/);
      expect(String(response.headers.vary)).toMatch(/Accept, Accept-Language/);
      const body = response.json();
      expect(Object.keys(body).sort()).toEqual(
        ['deliveredAt', 'events', 'promisedBy', 'shipments', 'status'].sort(),
      );
      expect(body.status).toBe('in_transit');
      expect(Object.keys(body.shipments[0]).sort()).toEqual(
        ['carrierId', 'estimatedDeliveryAt', 'status', 'trackingNumber'].sort(),
      );
      expect(Object.keys(body.events[0]).sort()).toEqual(['at', 'status']);
    }
  });

  it('answers the page to a browser, with its headers', async () => {
    expectPage(await track(token, { accept: BROWSER }));
    expectPage(await track(token, { accept: 'text/html' }));
  });

  it('shows the status, the promise, the whole timeline and each parcel’s carrier and tracking number', async () => {
    const html = expectPage(await track(token, { accept: BROWSER, 'accept-language': 'en' }));
    const json = (await track(token)).json();
    expect(html).toContain('On its way');
    expect(html).toContain(json.promisedBy);
    expect(order.events.map((e) => e.status)).toEqual(
      expect.arrayContaining(['received', 'allocated', 'dispatched', 'in_transit']),
    );
    const items = html.match(/<li>.*?<\/li>/g) ?? [];
    expect(items).toHaveLength(order.events.length);
    for (const event of order.events) expect(html).toContain(`datetime="${event.at}"`);
    expect(html).toContain('Received');
    expect(html).toContain('Handed to the carrier');
    for (const parcel of order.shipments) {
      expect(html).toContain(parcel.carrierId);
      expect(html).toContain(parcel.trackingNumber);
    }
  });

  it('holds none of the customer’s personal data', async () => {
    for (const language of ['en', 'zh-CN']) {
      const html = expectPage(await track(token, { accept: BROWSER, 'accept-language': language }));
      for (const value of [
        CUSTOMER.name,
        'Quixotepage',
        CUSTOMER.phone,
        '13912345678',
        CUSTOMER.email,
        ADDRESS.line1,
        'Marmaladeweg',
        ADDRESS.city,
        ADDRESS.postalCode,
      ])
        expect(html, `${language}: ${value}`).not.toContain(value);
      expect(html).not.toContain(order.id);
    }
  });

  it('speaks the language of Accept-Language, q-values honoured', async () => {
    const cases: [string, string][] = [
      ['zh-CN,zh;q=0.9', 'zh-CN'],
      ['zh-TW', 'zh-CN'],
      ['zh', 'zh-CN'],
      ['en-US,en;q=0.9', 'en'],
      ['en;q=0.5, zh;q=0.9', 'zh-CN'],
      ['zh;q=0.2, en-GB;q=0.8', 'en'],
      ['fr-FR, de;q=0.9, zh;q=0.1', 'zh-CN'],
      ['zh;q=0, en;q=0.1', 'en'],
    ];
    for (const [language, expected] of cases) {
      const html = expectPage(await track(token, { accept: BROWSER, 'accept-language': language }));
      expect(langOf(html), language).toBe(expected);
      expect(html, language).toContain(expected === 'en' ? 'Order tracking' : '订单跟踪');
    }
  });

  it('falls back to the order’s locale without a usable Accept-Language', async () => {
    for (const headers of [
      {},
      { 'accept-language': 'fr-FR, de;q=0.5' },
      { 'accept-language': '*' },
    ] as Record<string, string>[]) {
      expect(langOf(expectPage(await track(token, { accept: BROWSER, ...headers })))).toBe('en');
      expect(langOf(expectPage(await track(zhToken, { accept: BROWSER, ...headers })))).toBe('zh-CN');
    }
    const zh = expectPage(await track(zhToken, { accept: BROWSER }));
    expect(zh).toContain('已收到');
  });

  it('answers an unknown token 404: problem+json for JSON clients, a small page for browsers', async () => {
    for (const headers of [{}, { accept: 'application/json' }, { accept: '*/*' }] as Record<
      string,
      string
    >[]) {
      expectProblem(await track(UNKNOWN, headers), 404, 'not_found');
    }
    const en = expectPage(await track(UNKNOWN, { accept: BROWSER, 'accept-language': 'en' }), 404);
    expect(en).toContain('Order not found');
    const zh = expectPage(await track(UNKNOWN, { accept: BROWSER }), 404);
    expect(zh).toContain('未找到订单');
  });

  it('declares the HTML answer in the OpenAPI document beside the JSON one', async () => {
    const doc = (await server.app.inject({ url: '/docs/json' })).json();
    const content = doc.paths['/v1/track/{token}'].get.responses['200'].content;
    expect(content['application/json'].schema.type).toBe('object');
    expect(content['text/html'].schema.type).toBe('string');
  });
});
