import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SmsCall {
  at: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
  /** The status it was answered with. */
  status: number;
}

export type SmsAnswer = { status: number; headers?: Record<string, string> };

/**
 * A local HTTP SMS provider (contract, Customer messages): records every POST and answers what
 * `answer` says for it (200 by default); `accepted` are the calls answered 2xx.
 */
export async function startSmsProvider(
  answer: (call: Omit<SmsCall, 'status'>) => SmsAnswer = () => ({ status: 200 }),
) {
  const calls: SmsCall[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        /* left empty */
      }
      const call = { at: Date.now(), headers: request.headers, json };
      const { status, headers } = answer(call);
      calls.push({ ...call, status });
      response.writeHead(status, { 'content-type': 'application/json', ...headers }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/messages`,
    calls,
    accepted: () => calls.filter((c) => c.status >= 200 && c.status < 300),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
