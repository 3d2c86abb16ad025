import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NO_REDIS } from '../../src/demo/private-redis.js';

/**
 * `npm run demo` on a machine where no Redis runs. Each run is in a fresh network namespace (only
 * its own loopback, so nothing answers on 127.0.0.1:6379 whatever this machine runs); that takes
 * root, unshare(1) and ip(8) — as on every developer and CI machine of this project (.ci/run
 * installs them where missing); elsewhere the first test says what is missing.
 */
const which = (name: string) =>
  spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim() || undefined;
const UNSHARE = which('unshare');
const IP = which('ip');
const SH = which('sh');
const NPM = which('npm');
const canUnshare =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  !!UNSHARE &&
  !!IP &&
  spawnSync(UNSHARE, ['--net', 'true']).status === 0;

const children = new Set<ChildProcess>();
const redisPids = new Set<number>();
const emptyBin = mkdtempSync(join(tmpdir(), 'surgeline-nobin-'));

afterAll(() => {
  for (const child of children) {
    try {
      process.kill(-child.pid!, 'SIGKILL'); // its process group: the demo and whatever it started
    } catch {
      // already gone
    }
  }
  for (const pid of redisPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone, as it should be
    }
  }
  rmSync(emptyBin, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** Runs `command` (a shell line; "$0" is node) in a fresh network namespace with only lo up. */
function inFreshNetwork(command: string, env: Record<string, string | undefined>): Run {
  // The demo's outage, lockdown and supply story kept short, and swift's breaker quick to close again
  // (the demo waits for all of them before its report): these tests are about Redis, not the story.
  const demoEnv: Record<string, string | undefined> = {
    DEMO_OUTAGE_MS: '2000',
    DEMO_LOCKDOWN_MS: '1000',
    DEMO_RESTOCK_MS: '1000',
    DEMO_SUPPLIER_HALT_MS: '1500',
    BREAKER_COOL_DOWN_MS: '1000',
    ...process.env,
    ...env,
  };
  delete demoEnv.REDIS_URL;
  const child = spawn(
    UNSHARE!,
    ['--net', SH!, '-c', `${IP} link set lo up && ${command}`, process.execPath],
    { env: demoEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  children.add(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

const DEMO = 'exec "$0" --import tsx src/demo/run.ts';
const STARTED = /started a private Redis at redis:\/\/127\.0\.0\.1:(\d+) \(redis-server pid (\d+)\)/;

/** The private Redis the demo said it started, remembered for clean-up should the test fail. */
function privateRedis(output: string): { port: number; pid: number } {
  const match = STARTED.exec(output);
  expect(match, output).not.toBeNull();
  const started = { port: Number(match![1]), pid: Number(match![2]) };
  redisPids.add(started.pid);
  return started;
}

/** Live redis-server processes (zombies aside) serving a port, from /proc. */
function redisServersOn(port: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // redis-server retitles itself `redis-server 127.0.0.1:<port>`; before that: `--port <port>`.
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (state === 'Z' || !args.join(' ').includes('redis-server')) continue;
      if (args.join(' ').includes(`:${port}`) || args.includes(String(port))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run demo without a Redis', () => {
  it('can make a fresh network namespace here (root, unshare, ip, npm)', () => {
    expect(canUnshare, 'these tests need root, unshare(1) and ip(8)').toBe(true);
    expect(NPM, 'these tests need npm on PATH').toBeTruthy();
  });

  it('starts a private Redis, runs the surge to the report, exits 0 and leaves no redis-server', async () => {
    const run = inFreshNetwork(DEMO, { DEMO_ORDERS: '20', DEMO_EXIT: '1', PORT: '0' });
    const code = await run.exited;
    const output = run.output();
    const redis = privateRedis(output);
    expect(code, output).toBe(0);
    expect(output).toContain('Surgeline demo report');
    expect(output).toMatch(/by status .*delivered \d+/);
    expect(alive(redis.pid)).toBe(false);
    expect(redisServersOn(redis.port)).toEqual([]);
  }, 120_000);

  it('Ctrl-C on `npm run demo` (SIGINT to the whole group, then again from npm) stops the engine, then its Redis; exit 0', async () => {
    const run = inFreshNetwork(`exec ${NPM} run demo`, {
      DEMO_ORDERS: '10',
      PORT: '0',
      npm_config_update_notifier: 'false',
    });
    const deadline = Date.now() + 100_000;
    while (!run.output().includes('Ctrl-C to stop') && Date.now() < deadline) {
      if (run.child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(run.output()).toContain('Ctrl-C to stop');
    const redis = privateRedis(run.output());
    expect(alive(redis.pid)).toBe(true);
    process.kill(-run.child.pid!, 'SIGINT'); // what a terminal does on Ctrl-C
    const code = await run.exited;
    expect(code, run.output()).toBe(0);
    expect(alive(redis.pid)).toBe(false);
    expect(redisServersOn(redis.port)).toEqual([]);
  }, 120_000);

  it('stops its private Redis when it fails after starting it (here: invalid configuration), exit 1', async () => {
    const run = inFreshNetwork(DEMO, { DEMO_ORDERS: '5', DEMO_EXIT: '1', LOG_LEVEL: 'loud' });
    const code = await run.exited;
    const output = run.output();
    const redis = privateRedis(output);
    expect(code, output).toBe(1);
    expect(output).toContain('configuration error: LOG_LEVEL');
    expect(alive(redis.pid)).toBe(false);
    expect(redisServersOn(redis.port)).toEqual([]);
  }, 60_000);

  it('says in one line how to get a Redis, and exits 1, when there is no redis-server to run', async () => {
    const run = inFreshNetwork(DEMO, { DEMO_ORDERS: '5', DEMO_EXIT: '1', PATH: emptyBin });
    const code = await run.exited;
    const output = run.output();
    expect(code, output).toBe(1);
    expect(output.trim()).toBe(NO_REDIS);
  }, 60_000);
});
