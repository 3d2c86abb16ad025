import { ConfigError, loadConfig } from './config.js';
import { startProcess, type Role, type RunningProcess } from './runtime.js';

const ROLES: Role[] = ['all', 'api', 'worker'];

async function main() {
  const role = (process.argv[2] ?? 'all') as Role;
  if (!ROLES.includes(role)) throw new ConfigError(`unknown role "${role}" (use ${ROLES.join(', ')})`);
  const config = loadConfig();
  // Handlers first: a SIGTERM that arrives while the process starts still stops it cleanly.
  let running: RunningProcess | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (!running) return; // still starting: main() stops it as soon as it is up
    const { log } = running.ctx;
    log.info({ signal }, 'shutting down: no new work, finishing jobs in flight');
    const force = setTimeout(() => {
      log.warn(
        { timeoutMs: config.shutdownTimeoutMs },
        'shutdown timeout reached; exiting, unfinished jobs return to the queue',
      );
      process.exit(0);
    }, config.shutdownTimeoutMs);
    force.unref();
    try {
      await running.stop();
      log.info('stopped cleanly');
    } catch (error) {
      log.error({ err: error }, 'error during shutdown');
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  running = await startProcess(role, config);
  running.ctx.log.info(
    {
      role,
      port: config.port,
      queuePrefix: config.queuePrefix,
      redis: config.redisCluster ? 'cluster' : 'server',
      database: running.ctx.database.kind,
    },
    'surgeline started',
  );
  if (stopping) {
    stopping = false;
    await shutdown('SIGTERM');
  }
}

main().catch((error) => {
  if (error instanceof ConfigError) {
    console.error(`configuration error: ${error.message}`);
  } else {
    console.error(`surgeline failed to start: ${(error as Error).message}`);
  }
  process.exit(1);
});
