import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type AddressInfo } from 'node:net';

/**
 * A private Redis for `npm run demo` on a machine where none runs: the installed `redis-server`,
 * on a free port of 127.0.0.1, nothing written to disk, stopped when the demo stops.
 *
 * Why not the npm package `redis-memory-server`: its postinstall downloads the Redis source from
 * download.redis.io and compiles it with `make` on every `npm install`, unless
 * REDISMS_DISABLE_POSTINSTALL / REDISMS_SYSTEM_BINARY are set in the installing shell or under
 * `config.redisMemoryServer` in package.json; where no binary is found at start it downloads and
 * builds again. With the system binary it would only do what the few lines below do (pick a
 * port, spawn, wait, kill), for a dozen transitive dependencies.
 */

export const NO_REDIS =
  'no Redis: install redis-server (apt-get install redis-server / brew install redis) or set REDIS_URL';

export class NoRedisError extends Error {
  constructor(detail?: string) {
    super(detail ? `${NO_REDIS} (${detail})` : NO_REDIS);
  }
}

export interface PrivateRedis {
  url: string;
  port: number;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** Whether a Redis answers PING at host:port within timeoutMs. */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const running = new Set<ChildProcess>();
// Last resort for any exit path that skipped stop() (process.exit elsewhere, an uncaught error).
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `redis-server` from PATH; NoRedisError when there is none or it does not come up. */
export async function startPrivateRedis(binary = 'redis-server'): Promise<PrivateRedis> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
      ],
      // Its own process group: a Ctrl-C in the terminal reaches the demo, which stops the engine
      // first and Redis after it, instead of Redis vanishing under jobs still in flight.
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const spawnError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
    });
    if (spawnError) {
      throw new NoRedisError(spawnError.code === 'ENOENT' ? undefined : spawnError.message);
    }
    running.add(child);
    void exited.then(() => running.delete(child));

    const deadline = Date.now() + 5000;
    let up = false;
    while (!up && child.exitCode === null && Date.now() < deadline) {
      up = await redisAnswers('127.0.0.1', port, 300);
      if (!up) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (up) {
      // Its output is no longer needed; keep the pipes drained without holding the event loop.
      child.stdout?.resume();
      child.stderr?.resume();
      (child.stdout as { unref?: () => void } | null)?.unref?.();
      (child.stderr as { unref?: () => void } | null)?.unref?.();
      let stopping: Promise<void> | undefined;
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        pid: child.pid as number,
        stop() {
          stopping ??= (async () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill('SIGTERM');
            const force = setTimeout(() => child.kill('SIGKILL'), 3000);
            await exited;
            clearTimeout(force);
          })();
          return stopping;
        },
      };
    }
    child.kill('SIGKILL');
    await exited;
    lastError = output.trim().split('\n').pop() ?? 'it did not answer';
  }
  throw new NoRedisError(`redis-server did not start: ${lastError}`);
}
