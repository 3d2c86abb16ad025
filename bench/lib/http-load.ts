/**
 * A small closed-loop HTTP load generator on node:http (no extra dependency): `connections`
 * keep-alive sockets, each sending its next request as soon as the previous answer is read.
 */
import { Agent, request } from 'node:http';

export interface LoadResult {
  requests: number;
  wallMs: number;
  perSecond: number;
  /** Sorted latencies, ms. */
  latencies: number[];
  statuses: Record<number, number>;
  /** One answer body per status other than `expect`, for the report. */
  samples: Record<number, string>;
  errors: number;
}

export interface LoadSpec {
  /** http://host:port/path, or several: request i goes to url[i % url.length] (round-robin, each its own keep-alive pool). */
  url: string | string[];
  method?: string;
  connections: number;
  requests: number;
  /** Headers and body of request i (0-based). */
  make(i: number): { headers: Record<string, string>; body?: string };
  expect?: number;
}

export async function load(spec: LoadSpec): Promise<LoadResult> {
  const targets = (Array.isArray(spec.url) ? spec.url : [spec.url]).map((u) => ({
    url: new URL(u),
    agent: new Agent({ keepAlive: true, maxSockets: spec.connections }),
  }));
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const samples: Record<number, string> = {};
  let errors = 0;
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const { headers, body } = spec.make(i);
      const started = process.hrtime.bigint();
      const { url: target, agent } = targets[i % targets.length];
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname + target.search,
          method: spec.method ?? 'POST',
          headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
            const status = res.statusCode ?? 0;
            statuses[status] = (statuses[status] ?? 0) + 1;
            if (status !== (spec.expect ?? 202) && !(status in samples))
              samples[status] = Buffer.concat(chunks).toString().slice(0, 300);
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (next < spec.requests) await one(next++);
    }),
  );
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  for (const { agent } of targets) agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: spec.requests,
    wallMs,
    perSecond: (spec.requests * 1000) / wallMs,
    latencies,
    statuses,
    samples,
    errors,
  };
}
