import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Role } from '../../src/runtime.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface SurgelineProcess {
  child: ChildProcess;
  /** Everything the process wrote so far (for failure messages). */
  output(): string;
  /** Settles once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal if the process is still running. */
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<SurgelineProcess>();

/**
 * Starts `src/main.ts <role>` as a separate OS process: node itself with tsx as a loader (not
 * through npx), so a signal sent to it reaches Surgeline and nothing in between.
 */
export function spawnSurgeline(role: Role, env: Record<string, string>): SurgelineProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', role], {
    cwd: ROOT,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child);
}

function baseEnv(): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR']) {
    if (process.env[key] !== undefined) base[key] = process.env[key] as string;
  }
  // The pg-queues project: every process keeps its queues in PostgreSQL (its DATABASE_URL).
  if (process.env.TEST_QUEUE_BACKEND === 'postgres') base.QUEUE_BACKEND = 'postgres';
  return base;
}

function track(child: ChildProcess): SurgelineProcess {
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const handle: SurgelineProcess = {
    child,
    output: () => output,
    exited,
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  return handle;
}

const groups = new Set<number>();

/**
 * Starts `npm run <script>` the way an operator or a process manager does: npm is the first
 * process, and the leader of a process group of its own, so `process.kill(child.pid, sig)` reaches
 * npm alone and a test sees whether npm passes it on. killScriptGroups() clears up after it.
 */
export function spawnNpmScript(script: string, env: Record<string, string>): SurgelineProcess {
  const child = spawn('npm', ['run', script], {
    cwd: ROOT,
    env: { ...baseEnv(), npm_config_update_notifier: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid !== undefined) groups.add(child.pid);
  return track(child);
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** The executable's name as the kernel has it (`node`, `sh`, `npm run start`…). */
  comm: string;
}

/** Live processes (zombies left out) of a process group, from /proc (Linux). */
export async function processGroup(pgid: number): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    if (!stat) continue; // gone meanwhile
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    const [state, ppid, pgrp] = stat.slice(close + 2).split(' ');
    if (Number(pgrp) !== pgid || state === 'Z') continue;
    found.push({ pid: Number(entry), ppid: Number(ppid), comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return found;
}

/** SIGKILLs whatever is left in the process groups spawnNpmScript started (orphans included). */
export async function killScriptGroups(): Promise<void> {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // ESRCH: nothing left in it
    }
    groups.delete(pgid);
  }
}

/** SIGKILLs every process spawnSurgeline started that is still running, and waits for them. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const p of left) p.kill('SIGKILL');
  await Promise.all(left.map((p) => p.exited));
}

/** Waits for a process's exit, failing (with its output) if it has not exited by then. */
export async function exitWithin(p: SurgelineProcess, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process still running after ${ms} ms:\n${p.output()}`)), ms);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
