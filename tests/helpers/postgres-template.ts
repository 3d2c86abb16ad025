/**
 * Global setup of the postgres project: one migrated database on the server for the run, which
 * testDatabase() copies (CREATE DATABASE … TEMPLATE) for each test file instead of migrating a new
 * empty one each time. Nothing connects to the template after this setup (PostgreSQL copies only a
 * database nobody is connected to); it is dropped when the run ends. Every test database still runs
 * migrate() on top (a no-op on the copy), and this setup migrates with the same migrate() as before,
 * so a broken migration still fails the run.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/client.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated database test databases are copied from, or '' when there is none. */
    postgresTemplate: string;
  }
}

const SERVER_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export default async function setup(project: TestProject) {
  const name = `surgeline_template_${randomBytes(6).toString('hex')}`;
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const database = openDatabase(url.toString(), '');
  try {
    await database.migrate();
  } finally {
    await database.close();
  }
  project.provide('postgresTemplate', name);
  return async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  };
}
