import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './tests/helpers/sequencer.js';

const dbTests = ['tests/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts'];
// *.pg.test.ts need separate processes sharing one database, which only a PostgreSQL server allows,
// or test scheduling that does not depend on the database (priority lanes): they run on the server only.
const serverOnly = 'tests/**/*.pg.test.ts';
// The HTTP surface itself (documentation, sessions, rate limits, log hygiene, the tracking page,
// shedding): the same code on either database, so these run once, on the server. Every test of
// what the engine stores and does (intake, reads, allocation, dispatch, events, outbox,
// reconciliation, outages) runs on both.
const httpSurface = [
  'tests/integration/openapi.test.ts',
  'tests/integration/board-session.test.ts',
  'tests/integration/rate-limit.test.ts',
  'tests/integration/service.test.ts',
  'tests/integration/breaker-store.test.ts',
  'tests/integration/carriers-breaker.test.ts',
  'tests/integration/log-safety.test.ts',
  'tests/integration/tracking-page.test.ts',
  'tests/integration/load-shedding.test.ts',
  'tests/integration/metrics-promtool.test.ts',
  'tests/integration/tracing.test.ts',
];
// The engine on a Redis Cluster it starts itself: what is tested is where the keys go, the same on
// either database, so it runs once, on PGlite (the server project leaves it out).
const pgliteOnly = ['tests/integration/redis-cluster.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    // Two files at a time: most tests wait on timers, carriers and the databases, so on a 2-core
    // machine two workers finish the suite far sooner than vitest's default of cores − 1.
    maxWorkers: 2,
    // The longest files first, across projects, so neither worker is left alone at the end.
    sequence: { sequencer: LongestFirstSequencer },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.reports/vitest.json' },
    projects: [
      // Projects do not inherit the timeouts above; some unit tests start a process, slow on a loaded machine.
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'pglite',
          include: dbTests,
          exclude: [serverOnly, ...httpSurface],
          env: { TEST_DB: 'pglite' },
          // One migrated PGlite dump for the run; each test database starts from it instead of initdb.
          globalSetup: ['tests/helpers/pglite-template.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'postgres',
          include: dbTests,
          exclude: pgliteOnly,
          env: { TEST_DB: 'postgres' },
          // One migrated database for the run; each test database is a copy of it.
          globalSetup: ['tests/helpers/postgres-template.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The engine with QUEUE_BACKEND=postgres: queues, rate limits, breakers and locks in the
        // test database, no Redis: the end-to-end tests.
        test: {
          name: 'pg-queues',
          include: ['tests/e2e/**/*.test.ts'],
          env: { TEST_DB: 'postgres', TEST_QUEUE_BACKEND: 'postgres' },
          globalSetup: ['tests/helpers/postgres-template.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
