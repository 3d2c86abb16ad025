import type { Worker } from 'bullmq';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** A connection to one Redis server (REDIS_URL) or to a Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisClient = Redis | Cluster;

/** Where the engine's Redis is: `cluster` set means a Redis Cluster reached through these seeds. */
export interface RedisTarget {
  redisUrl: string;
  redisCluster?: RedisClusterSettings;
}

/** REDIS_CLUSTER_NODES, parsed (config.ts). */
export interface RedisClusterSettings {
  /** Seeds: any reachable node will do, the rest of the cluster is found from it. */
  nodes: { host: string; port: number }[];
  /** From the seeds written as URLs (`redis://user:pass@host:port`), applied to every node. */
  username?: string;
  password?: string;
  /** A seed written `rediss://…`: every node is reached over TLS. */
  tls: boolean;
}

/**
 * What a caller may choose per connection; the same for either kind. `maxRetriesPerRequest: null`
 * and `enableOfflineQueue: true` for BullMQ workers and subscribers (they wait for Redis), a small
 * retry count and no offline queue for the request path (it fails fast and answers 503).
 */
export interface ConnectionOptions {
  maxRetriesPerRequest?: number | null;
  enableOfflineQueue?: boolean;
  connectionName?: string;
}

function clusterOptions(cluster: RedisClusterSettings, options: ConnectionOptions): ClusterOptions {
  const { enableOfflineQueue, ...perNode } = options;
  return {
    // The cluster's own queue (commands sent before the slots are known, or while it reconnects)
    // follows the caller's choice; each node's connection keeps ioredis's own (it must queue while
    // a node connects).
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    redisOptions: {
      ...perNode,
      ...(cluster.username ? { username: cluster.username } : {}),
      ...(cluster.password ? { password: cluster.password } : {}),
      ...(cluster.tls ? { tls: {} } : {}),
    },
  };
}

/** The engine's connection: a Cluster when REDIS_CLUSTER_NODES is set, else one server. */
export function redisConnection(target: string | RedisTarget, options: ConnectionOptions = {}): RedisClient {
  const { redisUrl, redisCluster } = typeof target === 'string' ? { redisUrl: target } : target;
  if (redisCluster) return new Cluster(redisCluster.nodes, clusterOptions(redisCluster, options));
  return new Redis(redisUrl, { lazyConnect: false, ...(options as RedisOptions) });
}

/**
 * Another connection to the same Redis (a BullMQ worker's, a subscriber): `.duplicate()` takes
 * its options in a different place on a Cluster (`duplicate(startupNodes, { redisOptions })`) than
 * on a Redis (`duplicate(options)`), so every duplicate goes through here.
 */
export function duplicateConnection(client: RedisClient, options: ConnectionOptions = {}): RedisClient {
  if (client instanceof Cluster) {
    const { enableOfflineQueue, ...perNode } = options;
    return client.duplicate([], {
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      redisOptions: perNode, // merged over the original's by ioredis
    });
  }
  return client.duplicate(options);
}

/**
 * The hash tag of a key: what Redis Cluster hashes instead of the whole key — the text between
 * the first `{` and the first `}` after it, when not empty. Every key the engine writes starts
 * with QUEUE_PREFIX, so a prefix with a tag puts them all in one slot.
 */
export function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

/** CRC16-XMODEM, as Redis Cluster computes a key's slot. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot (0–16383) of a key, as `CLUSTER KEYSLOT` answers. */
export function keySlot(key: string): number {
  return crc16(Buffer.from(hashTag(key) ?? key)) % 16384;
}

/** How long a closed worker's disconnect is waited for (see disconnectWorker). */
const WORKER_DISCONNECT_WAIT_MS = 2_000;

/**
 * `worker.disconnect()` after `worker.close()`, its wait bounded. BullMQ waits for each of the
 * worker's connections to emit 'end'; on a Cluster, a closed worker's blocking connection can be
 * left 'disconnecting' with no node connection left (quit() on a cluster whose nodes are already
 * gone), so 'end' never comes and shutdown would hang. Its sockets are closed by then: only the
 * wait is cut short.
 */
export async function disconnectWorker(worker: Worker, waitMs = WORKER_DISCONNECT_WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    worker.disconnect().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
