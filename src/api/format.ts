/** Every time leaves the API as an RFC 3339 UTC string, or null. */
export function iso(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Malformed ids are answered 404 like unknown ones, without asking the database. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
