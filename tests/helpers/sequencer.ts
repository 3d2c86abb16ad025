/**
 * The order the suite's files are handed to its two workers: the longest first, whatever their
 * project, then the rest as vitest orders them. vitest's own order runs project by project (pglite,
 * postgres, unit), so a long file of the last project — the demo's, over a minute — ran at the end
 * while the other worker had nothing left to do; and a fresh clone (CI) has no timings cached for
 * vitest to go by. Longest first keeps both workers busy to the end. The list needs no upkeep to
 * stay correct (a file missing from it only runs in vitest's order); keep it to files that take
 * half a minute or more. The pg-queues project's files (the engine's queues in PostgreSQL) alternate
 * with the others', so two of them, each loading the server, seldom run side by side.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** project:file, longest first (as measured on the 2-core machine). */
const LONGEST = [
  'postgres:tests/e2e/allocation-race.test.ts',
  'pg-queues:tests/e2e/dispatch-faults.test.ts',
  'postgres:tests/e2e/dispatch-faults.test.ts',
  'pg-queues:tests/e2e/carrier-rate-limit.pg.test.ts',
  'postgres:tests/e2e/carrier-rate-limit.pg.test.ts',
  'pg-queues:tests/e2e/compensation.pg.test.ts',
  'postgres:tests/e2e/allocation-race.pg.test.ts',
  'pg-queues:tests/e2e/allocation-race.pg.test.ts',
  'pglite:tests/e2e/dispatch-faults.test.ts',
  'pg-queues:tests/e2e/allocation-race.test.ts',
  'unit:tests/unit/demo-redis.test.ts',
  'pg-queues:tests/e2e/reconciler.test.ts',
  'unit:tests/unit/demo.test.ts',
  'pg-queues:tests/e2e/priority-lanes.pg.test.ts',
  'postgres:tests/e2e/stock-deadlock.test.ts',
  'postgres:tests/e2e/compensation.pg.test.ts',
  'pglite:tests/e2e/reconciler.test.ts',
  'pglite:tests/e2e/allocation-race.test.ts',
  'postgres:tests/integration/db-outage.test.ts',
  'postgres:tests/e2e/worker-crash.pg.test.ts',
  'postgres:tests/e2e/lockdowns.test.ts',
  'pglite:tests/e2e/stock-deadlock.test.ts',
  'pglite:tests/e2e/lockdowns.test.ts',
];

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const i = LONGEST.indexOf(`${spec.project.name}:${relative(this.ctx.config.root, spec.moduleId)}`);
      return i === -1 ? LONGEST.length : i;
    };
    const sorted = await super.sort(files);
    // Array.prototype.sort is stable: files off the list keep vitest's order.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
