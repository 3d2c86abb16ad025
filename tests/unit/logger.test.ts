import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(JSON.parse(line)) } };
}

describe('logger', () => {
  it('redacts customer contact data, addresses and credentials', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', stream);
    log.info(
      {
        order: {
          customer: { name: 'Li Wei', phone: '+8613800000000', email: 'li@example.com' },
          shippingAddress: { line1: '1 Century Avenue', city: 'Shanghai' },
        },
        to: '+8613800000000',
        req: { headers: { authorization: 'Bearer sk_secret' } },
        orderId: 'kept',
      },
      'message',
    );
    const text = JSON.stringify(lines);
    for (const secret of ['Li Wei', '+8613800000000', 'li@example.com', '1 Century Avenue', 'sk_secret']) {
      expect(text).not.toContain(secret);
    }
    expect(lines[0].orderId).toBe('kept');
    expect(text).toContain('[redacted]');
  });

  it('honours the level', () => {
    const { lines, stream } = capture();
    const log = createLogger('warn', stream);
    log.info('hidden');
    log.warn('shown');
    expect(lines.map((l) => l.msg)).toEqual(['shown']);
  });
});
