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
  throw new AppError(400, 'validation_failed', 'The cursor is not one this API returned.', {
    errors: [{ path: 'query/cursor', message: 'is not a valid cursor' }],
  });
}

/**
 * One page of a keyset list: repositories return one row more than `limit`, which says whether
 * another page follows; the cursor is the last row's position.
 */
export async function page<R, V>(
  rows: R[],
  limit: number,
  positionOf: (row: R) => Record<string, string>,
  view: (row: R) => V | Promise<V>,
): Promise<{ items: V[]; nextCursor: string | null }> {
  const shown = rows.slice(0, limit);
  const last = shown[shown.length - 1];
  return {
    items: await Promise.all(shown.map(view)),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(positionOf(last)) : null,
  };
}
