import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

export function makeAjv(options: Options): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    useDefaults: true,
    removeAdditional: false,
    ...options,
  });
  addFormats(ajv);
  return ajv;
}

const NUL_MESSAGE = 'must not contain U+0000 (NUL) or an unpaired UTF-16 surrogate';
/** Text neither PostgreSQL nor PGlite can store: NUL, and a surrogate half without its pair (not Unicode). */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A JSON Pointer segment, as ajv writes them in `instancePath`. */
const pointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

type SchemaNode = {
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode | SchemaNode[];
};

/** `{}` with `additionalProperties: true`: contents the schema leaves to another validator. */
const isOpaque = (schema: SchemaNode | undefined) =>
  schema?.additionalProperties === true && Object.keys(schema.properties ?? {}).length === 0;

/**
 * Every string of `data` holding U+0000 (which neither PostgreSQL nor PGlite can store), keys
 * included, as ajv-shaped issues (`instancePath` like `/customer/name`). A key's own NUL is
 * shown as the text `\u0000`, never echoed raw. Given the schema, the scan skips an object it
 * leaves open (a batch entry, which compileStrict validates on its own, so that one bad entry
 * fails only itself).
 */
export function nulIssues(data: unknown, schema?: object, limit = 20): ErrorObject[] {
  const issues: ErrorObject[] = [];
  const issue = (instancePath: string): ErrorObject => ({
    instancePath,
    schemaPath: '#',
    keyword: 'nul',
    params: {},
    message: NUL_MESSAGE,
  });
  const seen = new Set<unknown>();
  const walk = (value: unknown, node: SchemaNode | undefined, path: string) => {
    if (issues.length >= limit) return;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) issues.push(issue(path));
      return;
    }
    if (value === null || typeof value !== 'object' || seen.has(value) || isOpaque(node)) return;
    seen.add(value);
    if (Array.isArray(value)) {
      const items = node?.items;
      value.forEach((item, index) =>
        walk(item, Array.isArray(items) ? items[index] : items, `${path}/${index}`),
      );
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      const segment = `${path}/${pointer(key.replace(/\u0000/g, '\\u0000'))}`;
      if (UNSTORABLE.test(key)) issues.push(issue(segment));
      const extra = node?.additionalProperties;
      const child = node?.properties?.[key] ?? (typeof extra === 'object' ? extra : undefined);
      walk(item, child, segment);
    }
  };
  walk(data, schema as SchemaNode | undefined, '');
  return issues;
}

/** An ajv-style validator: true or false, the issues of the last false in `errors`. */
export interface StrictValidator {
  (data: unknown, dataCxt?: object): boolean;
  errors?: ErrorObject[] | null;
}

type AjvValidate = ((data: unknown, dataCxt?: object) => boolean) & {
  errors?: ErrorObject[] | null;
  schemaEnv?: unknown;
};

/**
 * `validate`, then the NUL rule: a value that passes the schema is still refused when one of its
 * strings (or keys) holds U+0000. Keeps `schemaEnv`, so Fastify hands ajv the parent (which ajv
 * needs to coerce or default a root value).
 */
function withNulRule(validate: AjvValidate, schema: object): StrictValidator {
  const strict = ((data: unknown, dataCxt?: object) => {
    if (!validate(data, dataCxt)) {
      strict.errors = validate.errors;
      return false;
    }
    const cxt = dataCxt as { parentData?: Record<string, unknown>; parentDataProperty?: string } | undefined;
    const validated =
      cxt?.parentData && cxt.parentDataProperty !== undefined ? cxt.parentData[cxt.parentDataProperty] : data;
    const issues = nulIssues(validated, schema);
    strict.errors = issues.length > 0 ? issues : null;
    return issues.length === 0;
  }) as StrictValidator & { schemaEnv?: unknown };
  strict.schemaEnv = validate.schemaEnv;
  return strict;
}

let sharedStrict: Ajv | undefined;
let sharedTextual: Ajv | undefined;

/**
 * A validator for `schema` with the rules of a request body: strict types (no coercion),
 * defaults applied, and no string holding U+0000. For values validated outside Fastify's
 * validation, e.g. each order of a batch: `if (!v(entry)) validationErrors('body', v.errors ?? [])`.
 */
export function compileStrict(schema: object): StrictValidator {
  sharedStrict ??= makeAjv({ coerceTypes: false });
  return withNulRule(sharedStrict.compile(schema) as AjvValidate, schema);
}

/** compileStrict's twin for text on the wire (path parameters, query strings): numbers read from text. */
export function compileTextual(schema: object): StrictValidator {
  sharedTextual ??= makeAjv({ coerceTypes: true });
  return withNulRule(sharedTextual.compile(schema) as AjvValidate, schema);
}

/**
 * Bodies and headers are validated as sent: a wrong type is rejected, never coerced. Query
 * strings and path parameters are text on the wire, so there numbers are read from text. In
 * every part, a string holding U+0000 is refused like any invalid value.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = makeAjv({ coerceTypes: false });
  const textual = makeAjv({ coerceTypes: true });
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'querystring' || httpPart === 'params' ? textual : strict;
    return withNulRule(
      ajv.compile(schema as object) as AjvValidate,
      schema as object,
    ) as unknown as ReturnType<FastifySchemaCompiler<unknown>>;
  };
}
