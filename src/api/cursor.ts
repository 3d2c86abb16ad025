import { AppError } from '../errors.js';

/** Opaque list cursors: the keyset position, base64url-encoded JSON. */
export function encodeCursor(position: Record<string, string>): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeCursor<K extends string>(
  cursor: string | undefined,
  keys: readonly K[],
  isValid: (position: Record<K, string>) => boolean = () => true,
): Record<K, string> | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (value && typeof value === 'object' && keys.every((k) => typeof value[k] === 'string')) {
      const position = value as Record<K, string>;
      if (isValid(position)) return position;
    }
  } catch {
    /* falls through */
  }
  throw new AppError(400, 'validation_failed', 'The cursor is not one this API returned.', [
    { path: 'query/cursor', message: 'is not a valid cursor' },
  ]);
}
