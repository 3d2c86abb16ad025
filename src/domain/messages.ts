/** Customer-facing wording for each status, per locale. */
type Locale = 'zh-CN' | 'en';

const STATUS_TEXT: Record<Locale, Record<string, string>> = {
  en: {
    received: 'has been received',
    allocated: 'is being packed',
    backordered: 'is waiting for a restock',
    on_hold: 'is on hold: deliveries to your area are paused',
    dispatched: 'has been handed to the carrier',
    in_transit: 'is on its way',
    out_for_delivery: 'is out for delivery',
    failed_attempt: 'could not be delivered today; the carrier will try again',
    delivered: 'has been delivered',
    cancelled: 'has been cancelled',
    failed: 'could not be completed',
    retried: 'is being processed again',
  },
  'zh-CN': {
    received: '已收到',
    allocated: '正在备货',
    backordered: '正在等待补货',
    on_hold: '暂停配送：您所在区域的配送已暂停',
    dispatched: '已交付承运商',
    in_transit: '运输中',
    out_for_delivery: '正在派送',
    failed_attempt: '今日派送未成功，承运商将再次尝试',
    delivered: '已送达',
    cancelled: '已取消',
    failed: '未能完成',
    retried: '正在重新处理',
  },
};

export interface MessageInput {
  externalId: string;
  status: string;
  locale: string;
  promisedBy: Date;
  trackingUrl: string;
  contactless: boolean;
}

export function customerMessage(input: MessageInput): { subject: string; text: string } {
  const locale: Locale = input.locale === 'en' ? 'en' : 'zh-CN';
  const what = STATUS_TEXT[locale][input.status] ?? input.status;
  const promise = input.promisedBy.toISOString();
  if (locale === 'en') {
    const dropOff = input.contactless ? ' Contactless delivery: the parcel will be left at your door.' : '';
    return {
      subject: `Order ${input.externalId} ${what}`,
      text: `Your order ${input.externalId} ${what} (status: ${input.status}). Expected by ${promise}.${dropOff} Track it: ${input.trackingUrl}`,
    };
  }
  const dropOff = input.contactless ? ' 无接触配送：包裹将放在您的门口。' : '';
  return {
    subject: `订单 ${input.externalId} ${what}`,
    text: `您的订单 ${input.externalId} ${what}（状态：${input.status}）。预计送达：${promise}。${dropOff} 查看物流：${input.trackingUrl}`,
  };
}
