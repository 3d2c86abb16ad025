import { escapeHtml, statusLabel, type Locale } from '../../domain/messages.js';

/** What the tracking page shows: the JSON answer's fields, nothing personal. */
export interface TrackingView {
  status: string;
  promisedBy: string;
  deliveredAt: string | null;
  events: { status: string; at: string }[];
  shipments: {
    carrierId: string | null;
    trackingNumber: string | null;
    status: string;
    estimatedDeliveryAt: string | null;
  }[];
}

const PARCEL_LABEL: Record<Locale, Record<string, string>> = {
  en: {
    pending: 'Waiting for a carrier',
    booking: 'Being booked',
    booked: 'Booked',
    in_transit: 'On its way',
    delivered: 'Delivered',
    returned: 'Returned',
    cancel_pending: 'Being cancelled',
    cancelled: 'Cancelled',
  },
  'zh-CN': {
    pending: '等待承运商',
    booking: '正在预约',
    booked: '已预约',
    in_transit: '运输中',
    delivered: '已送达',
    returned: '已退回',
    cancel_pending: '正在取消',
    cancelled: '已取消',
  },
};

const WORDS = {
  en: {
    title: 'Order tracking',
    status: 'Status',
    promisedBy: 'Expected by',
    promised: 'Promised by',
    deliveredAt: 'Delivered at',
    timeline: 'Timeline',
    parcels: 'Parcels',
    carrier: 'Carrier',
    trackingNumber: 'Tracking number',
    parcelStatus: 'Status',
    estimate: 'Carrier estimate',
    noParcels: 'No parcel has been handed to a carrier yet.',
    none: '—',
    colon: ': ',
    notFoundTitle: 'Order not found',
    notFound: 'This tracking link does not name an order. Please check the link in your message.',
  },
  'zh-CN': {
    title: '订单跟踪',
    status: '状态',
    promisedBy: '预计送达',
    promised: '承诺送达',
    deliveredAt: '送达时间',
    timeline: '物流记录',
    parcels: '包裹',
    carrier: '承运商',
    trackingNumber: '运单号',
    parcelStatus: '状态',
    estimate: '承运商预计送达',
    noParcels: '包裹尚未交付承运商。',
    none: '—',
    colon: '：',
    notFoundTitle: '未找到订单',
    notFound: '此跟踪链接未对应任何订单，请核对消息中的链接。',
  },
} as const;

const CLOSED: ReadonlySet<string> = new Set(['delivered', 'cancelled', 'failed']);

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.5}' +
  'h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}table{border-collapse:collapse;width:100%}' +
  'th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd}.status{font-size:1.2rem;font-weight:bold}' +
  'time{font-variant-numeric:tabular-nums}';

const e = escapeHtml;
const time = (at: string) => `<time datetime="${e(at)}">${e(at)}</time>`;

function page(locale: Locale, title: string, body: string[]): string {
  return [
    '<!doctype html>',
    `<html lang="${locale}">`,
    '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${e(title)}</title><style>${STYLE}</style></head>`,
    '<body>',
    ...body,
    '</body></html>',
  ].join('\n');
}

/** The tracking page: self-contained (no script, no external resource), every value escaped. */
export function trackingPage(view: TrackingView, locale: Locale): string {
  const w = WORDS[locale];
  const body = [
    `<h1>${e(w.title)}</h1>`,
    `<p>${e(w.status)}${w.colon}<span class="status">${e(statusLabel(locale, view.status))}</span></p>`,
    `<p>${e(CLOSED.has(view.status) ? w.promised : w.promisedBy)}${w.colon}${time(view.promisedBy)}</p>`,
    ...(view.deliveredAt ? [`<p>${e(w.deliveredAt)}${w.colon}${time(view.deliveredAt)}</p>`] : []),
    `<h2>${e(w.timeline)}</h2>`,
    '<ol class="timeline">',
    ...view.events.map((ev) => `<li>${time(ev.at)} ${e(statusLabel(locale, ev.status))}</li>`),
    '</ol>',
    `<h2>${e(w.parcels)}</h2>`,
  ];
  if (view.shipments.length === 0) body.push(`<p>${e(w.noParcels)}</p>`);
  else {
    body.push(
      '<table class="parcels">',
      `<thead><tr><th>${e(w.carrier)}</th><th>${e(w.trackingNumber)}</th><th>${e(w.parcelStatus)}</th><th>${e(w.estimate)}</th></tr></thead>`,
      '<tbody>',
      ...view.shipments.map(
        (s) =>
          `<tr><td>${e(s.carrierId ?? w.none)}</td><td>${e(s.trackingNumber ?? w.none)}</td>` +
          `<td>${e(PARCEL_LABEL[locale][s.status] ?? s.status)}</td>` +
          `<td>${s.estimatedDeliveryAt ? time(s.estimatedDeliveryAt) : e(w.none)}</td></tr>`,
      ),
      '</tbody></table>',
    );
  }
  return page(locale, w.title, body);
}

/** The browser's answer to an unknown token. */
export function trackingNotFoundPage(locale: Locale): string {
  const w = WORDS[locale];
  return page(locale, w.notFoundTitle, [`<h1>${e(w.notFoundTitle)}</h1>`, `<p>${e(w.notFound)}</p>`]);
}
