/**
 * The words customers read: one template per status, timeline event and the `delayed` notice, in
 * zh-CN and en. Every message holds the order's externalId, its status in words (and its code),
 * the current promise (RFC 3339 UTC), the tracking link and, for contactless orders, the drop-off
 * note — and nothing else about the order: no name, phone, email or address. The SMS is the same
 * wording as the email on one line (without the status code); the email adds a subject and a small
 * self-contained HTML part.
 */
export type Locale = 'zh-CN' | 'en';
export const LOCALES: readonly Locale[] = ['zh-CN', 'en'];

/** The order's locale as a template locale: anything but `en` reads Chinese (the default). */
export function messageLocale(locale: string | null | undefined): Locale {
  return locale === 'en' ? 'en' : 'zh-CN';
}

/** Every status, timeline event and notice a customer is told of. */
export const TOLD_STATUSES = [
  'received',
  'backordered',
  'on_hold',
  'allocated',
  'dispatched',
  'in_transit',
  'out_for_delivery',
  'failed_attempt',
  'delivered',
  'cancelled',
  'failed',
  'retried',
  'delayed',
] as const;

/** Told at once as a delay: the promise can no longer be kept, the estimate is the new one. */
const DELAYS: ReadonlySet<string> = new Set(['backordered', 'on_hold', 'failed_attempt', 'delayed']);
/** Closed: the promise is only recalled, not expected. */
const CLOSED: ReadonlySet<string> = new Set(['delivered', 'cancelled', 'failed']);

/** Short names of statuses (subjects, the tracking page's timeline). */
export const STATUS_LABEL: Record<Locale, Record<string, string>> = {
  en: {
    received: 'Received',
    backordered: 'Waiting for restock',
    on_hold: 'On hold',
    allocated: 'Being packed',
    dispatched: 'Handed to the carrier',
    in_transit: 'On its way',
    out_for_delivery: 'Out for delivery',
    failed_attempt: 'Delivery attempt failed',
    delivered: 'Delivered',
    cancelled: 'Cancelled',
    failed: 'Could not be completed',
    retried: 'Processing again',
    delayed: 'Delayed',
  },
  'zh-CN': {
    received: '已收到',
    backordered: '等待补货',
    on_hold: '暂停配送',
    allocated: '正在备货',
    dispatched: '已交付承运商',
    in_transit: '运输中',
    out_for_delivery: '正在派送',
    failed_attempt: '派送未成功',
    delivered: '已送达',
    cancelled: '已取消',
    failed: '未能完成',
    retried: '重新处理',
    delayed: '配送延迟',
  },
};

/** The status in words, as it follows "Your order A-1 …" / "您的订单 A-1 …". */
const STATUS_TEXT: Record<Locale, Record<string, string>> = {
  en: {
    received: 'has been received',
    backordered: 'is delayed: it is waiting for a restock',
    on_hold: 'is delayed: deliveries to your area are paused',
    allocated: 'is being packed',
    dispatched: 'has been handed to the carrier',
    in_transit: 'is on its way',
    out_for_delivery: 'is out for delivery',
    failed_attempt: 'is delayed: delivery failed today; the carrier will try again',
    delivered: 'has been delivered',
    cancelled: 'has been cancelled',
    failed: 'could not be completed',
    retried: 'is being processed again',
    delayed: 'is delayed: the carrier expects it later than promised',
  },
  'zh-CN': {
    received: '已收到',
    backordered: '将延迟送达：正在等待补货',
    on_hold: '将延迟送达：您所在区域的配送已暂停',
    allocated: '正在备货',
    dispatched: '已交付承运商',
    in_transit: '运输中',
    out_for_delivery: '正在派送',
    failed_attempt: '将延迟送达：今日派送未成功，承运商将再次尝试',
    delivered: '已送达',
    cancelled: '已取消',
    failed: '未能完成',
    retried: '正在重新处理',
    delayed: '将延迟送达：承运商预计晚于承诺时间送达',
  },
};

/** Why a failed order failed, appended to the `failed` wording (unknown reasons say nothing more). */
const FAILURE_TEXT: Record<Locale, Record<string, string>> = {
  en: {
    out_of_stock: 'the items are out of stock',
    no_carrier: 'no carrier delivers to your area',
    carrier_failed: 'no carrier could take the parcel',
    returned: 'the parcel was returned',
  },
  'zh-CN': {
    out_of_stock: '商品缺货',
    no_carrier: '没有承运商配送至您所在区域',
    carrier_failed: '没有承运商能够承运该包裹',
    returned: '包裹已退回',
  },
};

const WORDS = {
  en: {
    expected: (p: string) => `Expected by ${p}.`,
    estimate: (p: string) => `New estimate: ${p}.`,
    carrierEstimate: (e: string, p: string) => `New estimate: ${e} (promised: ${p}).`,
    promised: (p: string) => `Promised by ${p}.`,
    dropOff: 'Contactless delivery: left at your door.',
    track: 'Track it:',
    trackLink: 'Track your order',
    subject: (id: string, label: string) => `Order ${id}: ${label}`,
    headline: (id: string, what: string, code?: string) =>
      code ? `Your order ${id} ${what} (status: ${code}).` : `Your order ${id} ${what}.`,
    reason: (what: string, reason: string) => `${what}: ${reason}`,
  },
  'zh-CN': {
    expected: (p: string) => `预计送达：${p}。`,
    estimate: (p: string) => `新的预计送达时间：${p}。`,
    carrierEstimate: (e: string, p: string) => `新的预计送达时间：${e}（原承诺：${p}）。`,
    promised: (p: string) => `承诺送达时间：${p}。`,
    dropOff: '无接触配送：包裹放在门口。',
    track: '查看物流：',
    trackLink: '查看物流',
    subject: (id: string, label: string) => `订单 ${id}：${label}`,
    headline: (id: string, what: string, code?: string) =>
      code ? `您的订单 ${id} ${what}（状态：${code}）。` : `您的订单 ${id} ${what}。`,
    reason: (what: string, reason: string) => `${what}：${reason}`,
  },
} as const;

/** Longer externalIds are shortened in an SMS (`…`), so one stays within SMS_MAX_CHARS. */
const SMS_ID_CHARS = 32;
/** The bound of an SMS with a tracking link of up to 100 characters. */
export const SMS_MAX_CHARS = 300;

export interface MessageInput {
  externalId: string;
  /** The status told: an order status, a timeline event or `delayed` (without `#n`). */
  status: string;
  locale: string;
  /** The order's current promise. */
  promisedBy: Date;
  trackingUrl: string;
  contactless: boolean;
  /** For `failed`: why, worded when known. */
  failureReason?: string | null;
  /** For `delayed`: the carrier's estimate, the new one. */
  estimatedDeliveryAt?: Date | null;
}

export interface CustomerMessage {
  /** The email's subject. */
  subject: string;
  /** The email's plain text: one sentence a line. */
  text: string;
  /** The email's HTML part: every value escaped, no external resource. */
  html: string;
  /** The same wording as `text` on one line, without the status code, the externalId shortened past SMS_ID_CHARS. */
  sms: string;
}

/** The status in words (the `failed` wording with its reason when one is known). */
export function statusWords(locale: Locale, status: string, failureReason?: string | null): string {
  const what = STATUS_TEXT[locale][status] ?? status;
  const reason = status === 'failed' && failureReason ? FAILURE_TEXT[locale][failureReason] : undefined;
  return reason ? WORDS[locale].reason(what, reason) : what;
}

export function statusLabel(locale: Locale, status: string): string {
  return STATUS_LABEL[locale][status] ?? status;
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe inside HTML elements and quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

function shortId(externalId: string): string {
  const chars = [...externalId];
  return chars.length > SMS_ID_CHARS ? `${chars.slice(0, SMS_ID_CHARS - 1).join('')}…` : externalId;
}

export function customerMessage(input: MessageInput): CustomerMessage {
  const locale = messageLocale(input.locale);
  const words = WORDS[locale];
  const status = input.status.split('#')[0];
  const what = statusWords(locale, status, input.failureReason);
  const promise = input.promisedBy.toISOString();
  const estimate = input.estimatedDeliveryAt?.toISOString();
  const promiseLine =
    status === 'delayed' && estimate
      ? words.carrierEstimate(estimate, promise)
      : DELAYS.has(status)
        ? words.estimate(promise)
        : CLOSED.has(status)
          ? words.promised(promise)
          : words.expected(promise);
  const dropOff = input.contactless ? words.dropOff : null;
  const lines = (id: string, code?: string) => [
    words.headline(id, what, code),
    promiseLine,
    ...(dropOff ? [dropOff] : []),
  ];
  const subject = words.subject(input.externalId, statusLabel(locale, status));
  const separator = locale === 'en' ? ' ' : '';
  const html = [
    `<!doctype html><html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>`,
    '<body style="font-family:sans-serif;line-height:1.5">',
    ...lines(input.externalId, status).map((line) => `<p>${escapeHtml(line)}</p>`),
    `<p><a href="${escapeHtml(input.trackingUrl)}">${escapeHtml(words.trackLink)}</a>: ${escapeHtml(input.trackingUrl)}</p>`,
    '</body></html>',
  ].join('\n');
  return {
    subject,
    text: [...lines(input.externalId, status), `${words.track} ${input.trackingUrl}`].join('\n'),
    html,
    sms: [...lines(shortId(input.externalId)), `${words.track} ${input.trackingUrl}`].join(separator),
  };
}
