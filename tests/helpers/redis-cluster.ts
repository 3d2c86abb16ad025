/**
 * A real Redis Cluster for one test file: `size` redis-server masters on free local ports, each a
 * child process of the test (killed by stop(), or when the test process exits), joined with
 * `redis-cli --cluster create`. Needs redis-server and redis-cli on PATH, as .ci/run installs them.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { waitFor } from './harness.js';
import { freePort } from './worker-process.js';

const run = promisify(execFile);

export interface TestCluster {
  /** Each master's client port. */
  ports: number[];
  /** For REDIS_CLUSTER_NODES: `127.0.0.1:P1,127.0.0.1:P2,…`. */
  seeds: string;
  /** A plain connection to each master (SCAN, CLUSTER KEYSLOT, PUBSUB: node-local commands). */
  nodes: Redis[];
  /** Each master's log so far (for a failure message). */
  logs(): string;
  stop(): Promise<void>;
}

/** Whether this machine can start a cluster; the test says what is missing otherwise. */
export function missingRedisTools(): string[] {
  return ['redis-server', 'redis-cli'].filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
  );
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export async function startRedisCluster(size = 3, extraArgs: string[] = []): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'surgeline-cluster-'));
  // Client and bus ports both chosen free: the default bus port (client + 10000) may not be.
  const all = await distinctFreePorts(size * 2);
  const ports = all.slice(0, size);
  const children: ChildProcess[] = [];
  const nodes: Redis[] = [];
  const logs = () =>
    ports
      .map((port) => {
        try {
          return `--- ${port}\n${readFileSync(join(dir, `redis-${port}.log`), 'utf8').slice(-2000)}`;
        } catch {
          return `--- ${port}: no log`;
        }
      })
      .join('\n');
  let watchdog: ChildProcess | undefined;
  process.once('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });

  const stop = async () => {
    watchdog?.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.quit().catch(() => n.disconnect())));
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    ports.forEach((port, i) => {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(all[size + i]),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '5000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--daemonize',
          'no',
          '--logfile',
          join(dir, `redis-${port}.log`),
          ...extraArgs,
        ],
        { stdio: 'ignore' },
      );
      child.on('error', () => undefined); // not found: the ping below times out, the log says why
      children.push(child);
    });
    // A test process killed without running its 'exit' handlers (a fork ended after a hook timed
    // out) would leave the servers running: a shell in its own process group kills them then.
    const pids = children.map((c) => c.pid).filter((pid) => pid !== undefined);
    watchdog = spawn(
      'sh',
      [
        '-c',
        `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${pids.join(' ')} 2>/dev/null`,
      ],
      { detached: true, stdio: 'ignore' },
    );
    watchdog.unref();
    for (const port of ports) {
      const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
      node.on('error', () => undefined);
      nodes.push(node);
    }
    await waitFor(
      async () =>
        (await Promise.all(nodes.map((n) => n.ping().catch(() => null)))).every((r) => r === 'PONG'),
      'the redis-server nodes to answer',
      15_000,
    );
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    await waitFor(
      async () => {
        const infos = await Promise.all(nodes.map((n) => n.cluster('INFO').catch(() => '')));
        return infos.every(
          (info) =>
            /cluster_state:ok/.test(String(info)) &&
            new RegExp(`cluster_known_nodes:${size}\\b`).test(String(info)) &&
            /cluster_slots_assigned:16384\b/.test(String(info)),
        );
      },
      'cluster_state:ok on every node',
      30_000,
    );
  } catch (error) {
    const tail = logs();
    await stop();
    throw new Error(`could not start a Redis Cluster: ${(error as Error).message}\n${tail}`);
  }

  return {
    ports,
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    nodes,
    logs,
    stop,
  };
}
