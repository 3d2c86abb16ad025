import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { recordingProvider } from './recording-provider.js';
import { httpSmsProvider } from './sms-http.js';
import { smtpProvider } from './smtp.js';
import type { CustomerMessage, NotificationProvider } from './types.js';

const SMS_TIMEOUT_MS = 10_000;

/**
 * The customer channels' providers, chosen by configuration: SMS over HTTP when SMS_PROVIDER_URL is
 * set, email over SMTP when SMTP_URL is set; either unset is recorded and logged, not sent.
 */
export function notificationProviders(config: Config, log: Logger): NotificationProvider {
  const recording = recordingProvider(log);
  const sms = config.sms.url
    ? httpSmsProvider({ url: config.sms.url, token: config.sms.token, timeoutMs: SMS_TIMEOUT_MS })
    : recording;
  const email = config.smtp.url ? smtpProvider({ url: config.smtp.url, from: config.smtp.from }) : recording;
  return byChannel({ sms, email });
}

/** One provider that hands each message to its channel's. */
export function byChannel(
  providers: Record<CustomerMessage['channel'], NotificationProvider>,
): NotificationProvider {
  return {
    name: `sms:${providers.sms.name},email:${providers.email.name}`,
    send: (message) => providers[message.channel].send(message),
    async close() {
      await Promise.all([...new Set(Object.values(providers))].map((p) => p.close?.()));
    },
  };
}
