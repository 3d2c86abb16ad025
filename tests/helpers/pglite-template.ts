/**
 * Global setup of the pglite project: migrates one in-memory PGlite and writes its data directory
 * (PGlite's dumpDataDir) to a temporary file; testDatabase() starts each file's database from it.
 * A fresh PGlite runs initdb first, which costs seconds per database (far more on a loaded
 * machine); one started from the dump skips initdb and is at the same migrated state. Every test
 * database still runs migrate() on top (a no-op on this dump), and this setup migrates with the
 * same migrate() as before, so a broken migration still fails the run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/client.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the migrated PGlite dump (a tar), or '' when there is none. */
    pgliteTemplate: string;
  }
}

export default async function setup(project: TestProject) {
  const database = openDatabase('memory://', '');
  await database.migrate();
  const client = (database.db as unknown as { $client: PGlite }).$client;
  const dump = await client.dumpDataDir('none');
  await database.close();
  const dir = mkdtempSync(join(tmpdir(), 'surgeline-pglite-'));
  const file = join(dir, 'migrated.tar');
  writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  project.provide('pgliteTemplate', file);
  return () => rmSync(dir, { recursive: true, force: true });
}
