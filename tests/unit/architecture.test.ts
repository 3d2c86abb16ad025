/**
 * The layering the code was reshaped into, checked on the source text (node:fs and regexes, no
 * parser): SQL lives in src/db/ repositories; routes and workers reach the database only through
 * them; use cases (src/steps/) hold no query builder; and an order's status is written only by
 * transition() (src/db/orders.ts) and intake (src/db/intake.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function sourceFiles(dir: string): string[] {
  const absolute = join(ROOT, dir);
  return readdirSync(absolute).flatMap((entry) => {
    const path = join(absolute, entry);
    if (statSync(path).isDirectory()) return sourceFiles(relative(ROOT, path));
    return /\.[cm]?ts$/.test(entry) && !entry.endsWith('.d.ts') ? [relative(ROOT, path)] : [];
  });
}

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** Comments out of the way, so a sentence that mentions `update(orders)` is not a write. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
}

/** Every module specifier the file imports or re-exports, static, type-only or dynamic. */
export function importedModules(text: string): string[] {
  const code = stripComments(text);
  const found: string[] = [];
  const patterns = [
    /\bimport\s+(?:type\s+)?[\w*{}\s,$]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s*from\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g, // side-effect import
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // dynamic import
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.push(match[1]);
  return found;
}

const isDrizzle = (specifier: string) => /^drizzle-orm(\/|$)/.test(specifier);
const isSchema = (specifier: string) => /(^|\/)db\/schema(\.[cm]?[jt]s)?$/.test(specifier);
/** The schema module seen from anywhere, src/db's own `./schema.js` included. */
const isSchemaModule = (specifier: string) => /(^|\/)schema(\.[cm]?[jt]s)?$/.test(specifier);

/** The names under which the file can refer to the schema's `orders` table. */
function ordersTableNames(code: string): { names: string[]; namespaces: string[] } {
  const names: string[] = [];
  const namespaces: string[] = [];
  for (const match of code.matchAll(/\bimport\s+(?:type\s+)?([\w*{}\s,$]*?)\s*from\s*['"]([^'"]+)['"]/g)) {
    if (!isSchemaModule(match[2])) continue;
    const clause = match[1];
    const star = /\*\s+as\s+(\w+)/.exec(clause);
    if (star) namespaces.push(star[1]);
    const braces = /\{([^}]*)\}/.exec(clause);
    for (const part of braces ? braces[1].split(',') : []) {
      const [imported, local] = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/);
      if (imported === 'orders') names.push(local ?? imported);
    }
  }
  return { names, namespaces };
}

/** The balanced `( … )` argument list that starts at `open` (an index of `(`). */
function argumentsAt(code: string, open: number): string {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === '(') depth++;
    else if (code[i] === ')' && --depth === 0) return code.slice(open + 1, i);
  }
  return code.slice(open + 1);
}

/**
 * Writes of the orders table's status: `.update(orders).set({ … status … })` (whatever the local
 * name of the table), `.insert(orders)` (a new row has a status), and raw SQL that updates
 * `orders` setting `status`. Each is described by its line number and text.
 */
export function orderStatusWrites(text: string): string[] {
  const code = stripComments(text);
  const { names, namespaces } = ordersTableNames(code);
  const tables = [...names.map((n) => `\\b${n}`), ...namespaces.map((n) => `\\b${n}\\s*\\.\\s*orders`)];
  const writes: string[] = [];
  const lineOf = (index: number) => code.slice(0, index).split('\n').length;
  if (tables.length > 0) {
    const table = `(?:${tables.join('|')})`;
    for (const match of code.matchAll(new RegExp(`\\.\\s*update\\s*\\(\\s*${table}\\s*\\)`, 'g'))) {
      const rest = code.slice(match.index + match[0].length);
      const set = /^\s*\.\s*set\s*\(/.exec(rest);
      const values = set ? argumentsAt(rest, set[0].length - 1) : rest.slice(0, 400);
      // `status: …`, `status,` (shorthand), `'status': …`, or a spread we cannot see into.
      if (/(^|[{,\s])['"]?status['"]?\s*[:,}]|\.\.\./.test(values))
        writes.push(`line ${lineOf(match.index)}: update(orders).set(${values.trim().slice(0, 80)})`);
    }
    for (const match of code.matchAll(new RegExp(`\\.\\s*insert\\s*\\(\\s*${table}\\s*\\)`, 'g')))
      writes.push(`line ${lineOf(match.index)}: insert(orders)`);
    // db/bulk.ts insertRows(db, orders, rows): a multi-row insert by json.
    for (const match of code.matchAll(new RegExp(`\\binsertRows\\s*\\(\\s*\\w+\\s*,\\s*${table}\\s*,`, 'g')))
      writes.push(`line ${lineOf(match.index)}: insertRows(orders)`);
  }
  for (const match of code.matchAll(/\bupdate\s+"?orders"?\s+set\b[^;`]*?\bstatus\b/gi))
    writes.push(`line ${lineOf(match.index)}: ${match[0].replace(/\s+/g, ' ').slice(0, 80)}`);
  return writes;
}

function violations(files: string[], check: (text: string) => string[]): string[] {
  return files.flatMap((file) => check(read(file)).map((what) => `${file}: ${what}`));
}

const SRC = sourceFiles('src');

describe('architecture', () => {
  it('finds the source tree it checks', () => {
    expect(SRC).toContain('src/db/orders.ts');
    expect(SRC.filter((f) => f.startsWith('src/api/routes/')).length).toBeGreaterThan(3);
    expect(SRC.filter((f) => f.startsWith('src/workers/')).length).toBeGreaterThan(0);
    expect(SRC.filter((f) => f.startsWith('src/steps/')).length).toBeGreaterThan(3);
  });

  it('routes and workers import neither drizzle-orm nor db/schema: they reach the database through src/db/ repositories', () => {
    const files = SRC.filter((f) => f.startsWith('src/api/routes/') || f.startsWith('src/workers/'));
    expect(
      violations(files, (text) =>
        importedModules(text)
          .filter((m) => isDrizzle(m) || isSchema(m))
          .map((m) => `imports ${m}`),
      ),
    ).toEqual([]);
  });

  it('use cases in src/steps import no drizzle-orm: their SQL lives in src/db/', () => {
    const files = SRC.filter((f) => f.startsWith('src/steps/'));
    expect(
      violations(files, (text) =>
        importedModules(text)
          .filter(isDrizzle)
          .map((m) => `imports ${m}`),
      ),
    ).toEqual([]);
  });

  it("only transition() (src/db/orders.ts) and intake (src/db/intake.ts) write an order's status", () => {
    const allowed = new Set(['src/db/orders.ts', 'src/db/intake.ts']);
    expect(
      violations(
        SRC.filter((f) => !allowed.has(f)),
        orderStatusWrites,
      ),
    ).toEqual([]);
    // The two that may do it do: the check is looking at the right thing.
    expect(orderStatusWrites(read('src/db/orders.ts')).length).toBeGreaterThan(0);
    expect(orderStatusWrites(read('src/db/intake.ts')).length).toBeGreaterThan(0);
  });

  describe('the checks themselves', () => {
    it('see every form of import', () => {
      const text = [
        `import { eq } from 'drizzle-orm';`,
        `import type { SQL } from "drizzle-orm";`,
        `import { pgTable } from 'drizzle-orm/pg-core';`,
        `import {\n  orders,\n  shops,\n} from '../../db/schema.js';`,
        `export { orders } from '../db/schema.js';`,
        `const m = await import('drizzle-orm');`,
        `// import { sql } from 'not-me';`,
      ].join('\n');
      const modules = importedModules(text);
      expect(modules.filter(isDrizzle)).toEqual([
        'drizzle-orm',
        'drizzle-orm',
        'drizzle-orm/pg-core',
        'drizzle-orm',
      ]);
      expect(modules.filter(isSchema)).toEqual(['../../db/schema.js', '../db/schema.js']);
      expect(modules).not.toContain('not-me');
      expect(isSchema('../db/schemas.js')).toBe(false);
      expect(isSchema('./api/schemas.js')).toBe(false);
    });

    it('see status writes, aliased or not, and leave other columns and tables alone', () => {
      const header = `import { orders, orders as o, shipments } from './schema.js';\nimport * as schema from './schema.js';\n`;
      const write = (body: string) => orderStatusWrites(header + body);
      expect(write(`await tx.update(orders).set({ status: 'failed' }).where(x);`)).toHaveLength(1);
      expect(
        write(`await tx\n  .update(orders)\n  .set({\n    updatedAt: now,\n    status,\n  })`),
      ).toHaveLength(1);
      expect(write(`await db.update(o).set({ 'status': next })`)).toHaveLength(1);
      expect(write(`await db.update(schema.orders).set({ status: next })`)).toHaveLength(1);
      expect(write(`await db.update(orders).set({ ...changes })`)).toHaveLength(1);
      expect(write(`await db.insert(orders).values(row)`)).toHaveLength(1);
      expect(write(`await insertRows(tx, orders, rows, { returning: true })`)).toHaveLength(1);
      expect(write(`await insertRows(tx, orderItems, rows)`)).toHaveLength(0);
      expect(write('await sql`UPDATE orders SET status = ${s} WHERE id = ${id}`')).toHaveLength(1);
      expect(write(`await db.update(orders).set({ promisedBy: when })`)).toEqual([]);
      expect(write(`await db.update(shipments).set({ status: 'booked' })`)).toEqual([]);
      expect(write(`// .update(orders).set({ status })`)).toEqual([]);
    });
  });
});
