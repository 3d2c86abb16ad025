import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { QUEUE_NAMES } from '../../src/queues/topology.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'surgeline',
      databaseUrl: undefined,
      dataDir: './.data',
      migrateOnStart: true,
      workerQueues: [...QUEUE_NAMES],
      logLevel: 'info',
      shutdownTimeoutMs: 10_000,
      publicUrl: 'http://localhost:3000',
      adminTokenGenerated: true,
      intakeBatch: { ms: 2, size: 100 },
    });
    expect(config.workerQueues).toEqual(expect.arrayContaining(['allocation', 'dispatch', 'notification']));
    expect(config.adminToken.length).toBeGreaterThanOrEqual(16);
    expect(loadConfig({}).adminToken).not.toBe(config.adminToken); // generated per process
  });

  it('reads every variable it is given', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      REDIS_URL: 'rediss://cache.internal:6380',
      QUEUE_PREFIX: '{tenant-a}',
      DATABASE_URL: 'postgres://app@db.internal:5432/surgeline',
      DATA_DIR: '/var/lib/surgeline',
      ADMIN_TOKEN: 'operator-token',
      MIGRATE_ON_START: '0',
      WORKER_QUEUES: ' dispatch , notification ',
      LOG_LEVEL: 'warn',
      SHUTDOWN_TIMEOUT_MS: '2500',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      redisUrl: 'rediss://cache.internal:6380',
      queuePrefix: '{tenant-a}',
      databaseUrl: 'postgres://app@db.internal:5432/surgeline',
      dataDir: '/var/lib/surgeline',
      adminToken: 'operator-token',
      adminTokenGenerated: false,
      migrateOnStart: false,
      workerQueues: ['dispatch', 'notification'],
      logLevel: 'warn',
      shutdownTimeoutMs: 2500,
      publicUrl: 'http://localhost:8080',
    });
  });

  it('accepts memory:// and postgresql:// databases, and an explicit PUBLIC_URL', () => {
    expect(loadConfig({ DATABASE_URL: 'memory://' }).databaseUrl).toBe('memory://');
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@h/db' }).databaseUrl).toBe('postgresql://u@h/db');
    expect(loadConfig({ PUBLIC_URL: 'https://shop.example.com/' }).publicUrl).toBe(
      'https://shop.example.com',
    );
  });

  it('reads the group-commit settings, 0 ms (no wait) and a batch of 1 included', () => {
    expect(loadConfig({ INTAKE_BATCH_MS: '0', INTAKE_BATCH_SIZE: '1' }).intakeBatch).toEqual({
      ms: 0,
      size: 1,
    });
    expect(loadConfig({ INTAKE_BATCH_MS: '25', INTAKE_BATCH_SIZE: '500' }).intakeBatch).toEqual({
      ms: 25,
      size: 500,
    });
  });

  it('treats an empty variable as unset', () => {
    const config = loadConfig({ PORT: '', DATABASE_URL: '', LOG_LEVEL: '', WORKER_QUEUES: '' });
    expect(config.port).toBe(3000);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.logLevel).toBe('info');
    expect(config.workerQueues).toEqual([...QUEUE_NAMES]);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['REDIS_URL', 'http://x'],
    ['REDIS_URL', 'not a url'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'nonsense'],
    ['WORKER_QUEUES', 'nope'],
    ['WORKER_QUEUES', 'allocation,nope'],
    ['LOG_LEVEL', 'loud'],
    ['MIGRATE_ON_START', '2'],
    ['MIGRATE_ON_START', 'yes'],
    ['SHUTDOWN_TIMEOUT_MS', 'soon'],
    ['PUBLIC_URL', 'ftp://x'],
    ['MIN_SHARE_STANDARD_PERCENT', '90'],
    ['MIN_SHARE_EXPRESS_PERCENT', '-5'],
    ['INTAKE_BATCH_MS', '-1'],
    ['INTAKE_BATCH_MS', '1.5'],
    ['INTAKE_BATCH_MS', '1001'],
    ['INTAKE_BATCH_SIZE', '0'],
    ['INTAKE_BATCH_SIZE', 'many'],
    ['INTAKE_BATCH_SIZE', '1001'],
  ])('%s=%s throws a ConfigError naming the variable', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.message).toContain(name);
    expect(error.message).not.toContain('\n');
  });

  it('reads QUEUE_BACKEND: redis by default, postgres only with a PostgreSQL server and no Redis Cluster', () => {
    expect(loadConfig({}).queueBackend).toBe('redis');
    const server = { DATABASE_URL: 'postgres://u@h/db' };
    expect(loadConfig({ ...server, QUEUE_BACKEND: 'postgres' })).toMatchObject({
      queueBackend: 'postgres',
      queuePoolSize: 20,
    });
    expect(loadConfig({ ...server, QUEUE_BACKEND: 'postgres', QUEUE_POOL_SIZE: '20' }).queuePoolSize).toBe(
      20,
    );
    for (const env of <Record<string, string>[]>[
      { QUEUE_BACKEND: 'kafka' },
      { QUEUE_BACKEND: 'postgres' }, // embedded PGlite
      { QUEUE_BACKEND: 'postgres', DATABASE_URL: 'memory://' },
      { ...server, QUEUE_BACKEND: 'postgres', REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: '{s}' },
      { ...server, QUEUE_BACKEND: 'postgres', QUEUE_POOL_SIZE: '1' },
    ]) {
      const error = configError(env);
      expect(error.message).toMatch(/QUEUE_BACKEND|QUEUE_POOL_SIZE/);
      expect(error.message).not.toContain('\n');
    }
  });

  it('reads the minimum shares of priority lanes, 10% standard and 20% express by default', () => {
    expect(loadConfig({}).minShares).toEqual({ standard: 0.1, express: 0.2 });
    expect(
      loadConfig({ MIN_SHARE_STANDARD_PERCENT: '5', MIN_SHARE_EXPRESS_PERCENT: '30' }).minShares,
    ).toEqual({
      standard: 0.05,
      express: 0.3,
    });
    expect(
      configError({ MIN_SHARE_STANDARD_PERCENT: '50', MIN_SHARE_EXPRESS_PERCENT: '50' }).message,
    ).toContain('below 100');
  });

  it('reads REDIS_CLUSTER_NODES: host:port seeds, or redis:// URLs whose credentials apply to every node', () => {
    expect(loadConfig({}).redisCluster).toBeUndefined();
    expect(
      loadConfig({
        REDIS_CLUSTER_NODES: ' 10.0.0.1:7000 , redis-b:7001,[::1]:7002',
        QUEUE_PREFIX: '{surgeline}',
      }).redisCluster,
    ).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
    });
    expect(
      loadConfig({ REDIS_CLUSTER_NODES: 'rediss://app:s%40cret@cache-1:6380', QUEUE_PREFIX: 'a-{b}-c' })
        .redisCluster,
    ).toEqual({ nodes: [{ host: 'cache-1', port: 6380 }], username: 'app', password: 's@cret', tls: true });
  });

  it.each([
    ['10.0.0.1'],
    ['10.0.0.1:7000,'],
    ['10.0.0.1:0'],
    ['10.0.0.1:70000'],
    ['http://10.0.0.1:7000'],
    ['redis://10.0.0.1:7000/2'],
    ['not a host:7000'],
  ])('REDIS_CLUSTER_NODES=%s throws one line naming the variable', (value) => {
    const error = configError({ REDIS_CLUSTER_NODES: value, QUEUE_PREFIX: '{surgeline}' });
    expect(error.message).toContain('REDIS_CLUSTER_NODES');
    expect(error.message).not.toContain('\n');
  });

  it('never echoes a cluster seed password in the error', () => {
    const error = configError({
      REDIS_CLUSTER_NODES: 'redis://app:hunter2@cache-1:6380/0',
      QUEUE_PREFIX: '{s}',
    });
    expect(error.message).toContain('REDIS_CLUSTER_NODES');
    expect(error.message).not.toContain('hunter2');
  });

  it.each([['surgeline'], ['{}surgeline'], ['surgeline{'], ['surge}line{x']])(
    'with REDIS_CLUSTER_NODES set, QUEUE_PREFIX=%s (no hash tag) is refused in one line naming QUEUE_PREFIX',
    (prefix) => {
      const error = configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: prefix });
      expect(error.message).toContain('QUEUE_PREFIX');
      expect(error.message).toContain('hash tag');
      expect(error.message).not.toContain('\n');
    },
  );

  it('refuses the default prefix in cluster mode, and accepts any prefix without a cluster', () => {
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).message).toContain('"{surgeline}"');
    expect(loadConfig({ QUEUE_PREFIX: 'surgeline' }).queuePrefix).toBe('surgeline');
    expect(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: '{x}:y' }).queuePrefix).toBe(
      '{x}:y',
    );
  });

  it('names the bad value too, so the operator sees what to fix', () => {
    expect(configError({ PORT: 'abc' }).message).toContain('abc');
    expect(configError({ WORKER_QUEUES: 'allocation,nope' }).message).toContain('nope');
    expect(configError({ LOG_LEVEL: 'loud' }).message).toContain('loud');
  });
});

describe('starting a process with a bad configuration', () => {
  const start = (role: string, env: Record<string, string>) => {
    const base: Record<string, string> = {};
    for (const key of ['PATH', 'HOME', 'TMPDIR', 'NODE_OPTIONS']) {
      if (process.env[key] !== undefined) base[key] = process.env[key] as string;
    }
    return spawnSync('npx', ['tsx', 'src/main.ts', role], {
      cwd: ROOT,
      env: { ...base, REDIS_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: 'sltest-config', PORT: '0', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
  };
  const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

  it('`api` without DATABASE_URL exits 1 with one line naming DATABASE_URL', () => {
    const result = start('api', {});
    expect(result.error).toBeUndefined();
    expect(result.status).toBe(1);
    const output = lines(`${result.stdout}${result.stderr}`);
    expect(output).toHaveLength(1);
    expect(output[0]).toContain('DATABASE_URL');
  });

  it('cluster mode with a QUEUE_PREFIX lacking a hash tag exits 1 with one line naming QUEUE_PREFIX', () => {
    const result = start('all', { REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'surgeline' });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe(1);
    const output = lines(`${result.stdout}${result.stderr}`);
    expect(output).toHaveLength(1);
    expect(output[0]).toContain('QUEUE_PREFIX');
    expect(output[0]).toContain('REDIS_CLUSTER_NODES');
  });

  it('`worker` with a bad PORT exits 1 with one line naming PORT', () => {
    const result = start('worker', { PORT: 'abc', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/none' });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe(1);
    const output = lines(`${result.stdout}${result.stderr}`);
    expect(output).toHaveLength(1);
    expect(output[0]).toContain('PORT');
  });
});
