import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  REDIS_URL,
  testDatabase,
  uniquePrefix,
  waitFor,
  type TestDatabase,
} from '../helpers/harness.js';
import {
  exitWithin,
  freePort,
  killAll,
  killScriptGroups,
  processGroup,
  spawnNpmScript,
} from '../helpers/worker-process.js';

const SHUTDOWN_TIMEOUT_MS = 5000;

/**
 * A process manager (systemd, Kubernetes, `docker stop`) signals one PID: the first process of the
 * start command, here npm. npm passes SIGTERM to its child, `sh -c <script>`; dash (sh on Debian)
 * neither execs a lone command nor passes the signal on, so without `exec` in the script the shell
 * dies, npm exits 143 and the engine, orphaned, keeps serving.
 */
describe('SIGTERM to the PID of an npm start script', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await testDatabase();
  });

  afterAll(async () => {
    await killScriptGroups(); // an orphaned engine would still be in npm's process group
    await killAll();
    await db?.drop();
  });

  for (const script of ['start', 'start:worker']) {
    it(`npm run ${script}: npm exits 0, the engine stopped cleanly, nothing is left`, async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const npm = spawnNpmScript(script, {
        DATABASE_URL: db.url!,
        REDIS_URL,
        QUEUE_PREFIX: uniquePrefix(),
        PORT: String(port),
        HOST: '127.0.0.1',
        ADMIN_TOKEN,
        LOG_LEVEL: 'info', // 'stopped cleanly' is an info line
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      });
      const pid = npm.child.pid!;
      try {
        await waitFor(
          async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
          `/readyz of npm run ${script}`,
          40_000,
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${npm.output()}`);
      }
      // npm's child is node itself: the script execs it, no shell stays in between.
      const children = (await processGroup(pid)).filter((p) => p.ppid === pid);
      expect(
        children.map((p) => p.comm),
        npm.output(),
      ).toEqual(['node']);

      const sent = Date.now();
      process.kill(pid, 'SIGTERM'); // npm's PID only, not its group
      const exit = await exitWithin(npm, SHUTDOWN_TIMEOUT_MS + 5000);
      const output = npm.output();
      expect(exit, output).toEqual({ code: 0, signal: null });
      expect(Date.now() - sent).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 5000);
      expect(output).toContain('"signal":"SIGTERM"');
      expect(output).toContain('stopped cleanly');
      expect(output).not.toMatch(/shutdown timeout reached/);
      // The engine really stopped (it was not orphaned): nothing listens, nothing is left in the group.
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      await waitFor(async () => (await processGroup(pid)).length === 0, 'npm’s process group to empty', 5000);
    });
  }
});
