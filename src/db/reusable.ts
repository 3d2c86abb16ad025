import { sql, type Placeholder } from 'drizzle-orm';
import type { Db } from './client.js';

/** What drizzle keeps of a built query: its text, its parameters (placeholders), how to map rows. */
interface Built {
  queryString: string;
  params: unknown[];
  fields: unknown;
  customResultMapper: unknown;
  joinsNotNullableMap: unknown;
}

/** A query builder drizzle can prepare (select, insert, update and delete all can). */
interface Preparable {
  _prepare(): Built;
}

interface Session {
  prepareQuery(
    query: { sql: string; params: unknown[] },
    fields: unknown,
    name: string | undefined,
    isResponseInArrayMode: boolean,
    customResultMapper?: unknown,
  ): { joinsNotNullableMap?: unknown; execute(values: Record<string, unknown>): Promise<unknown> };
}

/**
 * A hot query whose SQL is built once per process and then run on any Db — the pool or a
 * transaction — with only its values filled in. Drizzle builds a query's SQL anew each time it
 * runs, through its generic builder: ~0.1–0.2 ms of CPU for a select of a wide row, more than
 * PostgreSQL takes to answer it by primary key; the pipeline runs dozens per order.
 *
 * `build` writes the query once, with `p('name')` where each value goes; the result is typed as
 * that query's own result. It uses the session's `prepareQuery`, which drizzle's own `.prepare()`
 * is made of, so rows are mapped exactly as the builder maps them (tests run both drivers).
 */
export function reusable<V extends Record<string, unknown>, R>(
  build: (db: Db, p: (name: keyof V & string) => Placeholder) => PromiseLike<R>,
): (db: Db, values: V) => Promise<R> {
  let built: Built | undefined;
  return (db, values) => {
    built ??= (build(db, (name) => sql.placeholder(name)) as unknown as Preparable)._prepare();
    const session = (db as unknown as { _: { session: Session } })._.session;
    const query = session.prepareQuery(
      { sql: built.queryString, params: built.params },
      built.fields,
      undefined,
      true,
      built.customResultMapper,
    );
    query.joinsNotNullableMap = built.joinsNotNullableMap;
    return query.execute(values) as Promise<R>;
  };
}
