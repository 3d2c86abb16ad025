import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One message as the SMTP server received it, its top headers unfolded and its parts decoded. */
export interface ReceivedMail {
  at: number;
  from: string;
  to: string[];
  headers: Map<string, string>;
  text?: string;
  html?: string;
  raw: string;
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function decode(body: string, encoding: string | undefined): string {
  const cte = (encoding ?? '7bit').toLowerCase();
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    const bytes = body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

/** The text and HTML parts of a message (single part, or multipart/alternative or /mixed, one level deep or two). */
function parts(headers: Map<string, string>, body: string, into: { text?: string; html?: string }) {
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    for (const chunk of body.split(`--${boundary}`).slice(1)) {
      if (chunk.startsWith('--')) break;
      const split = chunk.indexOf('\r\n\r\n');
      if (split < 0) continue;
      parts(parseHeaders(chunk.slice(2, split)), chunk.slice(split + 4).replace(/\r\n$/, ''), into);
    }
    return;
  }
  const decoded = decode(body, headers.get('content-transfer-encoding'));
  if (/^text\/html/i.test(type)) into.html = decoded;
  else if (/^text\/plain/i.test(type)) into.text = decoded;
}

export function parseMail(raw: string): Pick<ReceivedMail, 'headers' | 'text' | 'html'> {
  const split = raw.indexOf('\r\n\r\n');
  const headers = parseHeaders(raw.slice(0, split));
  const found: { text?: string; html?: string } = {};
  parts(headers, raw.slice(split + 4), found);
  return { headers, ...found };
}

/**
 * A real SMTP server on a free local port (smtp-server, no TLS, authentication optional) that
 * keeps every message it accepts. `answer` may refuse a message at DATA with an SMTP code.
 */
export async function startSmtpSink(answer: (mail: ReceivedMail) => number | undefined = () => undefined) {
  const accepted: ReceivedMail[] = [];
  /** Every message that reached DATA, accepted or not. */
  const attempts: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const mail: ReceivedMail = {
          at: Date.now(),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parseMail(raw),
        };
        attempts.push(mail);
        const code = answer(mail);
        if (code) {
          const error = Object.assign(new Error(`refused with ${code}`), { responseCode: code });
          return callback(error);
        }
        accepted.push(mail);
        callback();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    accepted,
    attempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
