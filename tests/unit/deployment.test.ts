/**
 * The deployment files: docker-compose.yml as docker-compose itself resolves it, and every
 * Kubernetes manifest in deploy/ against the Kubernetes (and KEDA) schemas, offline.
 *
 * Schemas: kubernetes-models and @kubernetes-models/keda (validators generated from the
 * Kubernetes OpenAPI document and KEDA's CRDs). They check required fields, types and enums but,
 * like the OpenAPI schemas they come from, accept unknown fields: a misspelt key is caught by the
 * assertions below on the fields that matter (probes, resources, securityContext, selectors).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { QUEUE_NAMES } from '../../src/queues/topology.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const deployDir = path.join(root, 'deploy');

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

/** `docker-compose` (Debian's package) or the `docker compose` plugin, whichever exists. */
function composeCommand(): string[] {
  const works = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  if (works('docker-compose', ['version'])) return ['docker-compose'];
  if (works('docker', ['compose', 'version'])) return ['docker', 'compose'];
  throw new Error(
    'neither docker-compose nor `docker compose` is installed (apt-get install docker-compose)',
  );
}

/** `config` with only the given variables (none inherited: a developer's ADMIN_TOKEN must not hide a default). */
function composeConfig(vars: Record<string, string>) {
  const [cmd, ...pre] = composeCommand();
  return spawnSync(cmd, [...pre, '-f', path.join(root, 'docker-compose.yml'), 'config'], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...vars },
  });
}

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: string[];
  scale?: number;
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  environment?: Record<string, string | null>;
  stop_grace_period?: string;
}

const SECRETS = { ADMIN_TOKEN: 'test-admin-token-0123456789', POSTGRES_PASSWORD: 'test-password-0123456789' };

function seconds(duration: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(duration);
  if (!m || (!m[1] && !m[2])) throw new Error(`unreadable duration ${duration}`);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
}

describe('docker-compose.yml', () => {
  const result = composeConfig(SECRETS);
  const config = () => {
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    return parse(result.stdout) as { services: Record<string, ComposeService> };
  };

  it('resolves (`config` exits 0) with the secrets set', () => {
    const { services } = config();
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['postgres', 'redis', 'migrate', 'api', 'worker']),
    );
  });

  it('runs two API replicas and a worker service, each our image and role', () => {
    const { services } = config();
    const replicas = (s: ComposeService) => s.deploy?.replicas ?? s.scale ?? 1;
    expect(replicas(services.api)).toBe(2);
    expect(replicas(services.worker)).toBeGreaterThanOrEqual(1);
    expect(services.api.command?.slice(-2)).toEqual(['src/main.ts', 'api']);
    expect(services.worker.command?.slice(-2)).toEqual(['src/main.ts', 'worker']);
    // Every queue is served: WORKER_QUEUES unset (all), or listing every queue.
    const queues = services.worker.environment?.WORKER_QUEUES;
    if (queues) expect(queues.split(',').sort()).toEqual([...QUEUE_NAMES].sort());
  });

  it('health-checks the API and the workers on /readyz, and the databases', () => {
    const { services } = config();
    for (const name of ['api', 'worker']) {
      const check = services[name].healthcheck;
      expect(check?.disable).not.toBe(true);
      expect(JSON.stringify(check?.test)).toContain('/readyz');
    }
    for (const name of ['postgres', 'redis']) expect(services[name].healthcheck?.test).toBeTruthy();
  });

  it('starts the engine only once PostgreSQL and Redis are healthy and the migration ran', () => {
    const { services } = config();
    const condition = (s: ComposeService, on: string) =>
      Array.isArray(s.depends_on) ? 'service_started' : s.depends_on?.[on]?.condition;
    for (const name of ['api', 'worker']) {
      expect(condition(services[name], 'postgres'), name).toBe('service_healthy');
      expect(condition(services[name], 'redis'), name).toBe('service_healthy');
      expect(condition(services[name], 'migrate'), name).toBe('service_completed_successfully');
    }
    expect(condition(services.migrate, 'postgres')).toBe('service_healthy');
    // Anything else (the load balancer) waits for a healthy API.
    for (const [name, service] of Object.entries(services)) {
      if (['postgres', 'redis', 'migrate', 'api', 'worker'].includes(name)) continue;
      expect(condition(service, 'api'), name).toBe('service_healthy');
    }
  });

  it('gives the engine longer than SHUTDOWN_TIMEOUT_MS to stop', () => {
    const { services } = config();
    for (const name of ['api', 'worker']) {
      const timeoutMs = Number(services[name].environment?.SHUTDOWN_TIMEOUT_MS ?? 10_000);
      expect(seconds(services[name].stop_grace_period ?? '10s') * 1000, name).toBeGreaterThan(timeoutMs);
    }
  });

  it('puts the secrets it was given where they belong, and no other password', () => {
    const { services } = config();
    expect(services.api.environment?.ADMIN_TOKEN).toBe(SECRETS.ADMIN_TOKEN);
    expect(services.api.environment?.DATABASE_URL).toContain(`:${SECRETS.POSTGRES_PASSWORD}@postgres:`);
    expect(services.postgres.environment?.POSTGRES_PASSWORD).toBe(SECRETS.POSTGRES_PASSWORD);
  });

  it.each(Object.keys(SECRETS))('refuses to resolve without %s (no default secret)', (name) => {
    const vars: Record<string, string> = { ...SECRETS };
    delete vars[name];
    const missing = composeConfig(vars);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain(name);
  });
});

// ---------------------------------------------------------------------------------------------
// deploy/

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  [key: string]: any;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};

const yamlFiles = readdirSync(deployDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

function documents(file: string): unknown[] {
  return parseAllDocuments(readFileSync(path.join(deployDir, file), 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    return doc.toJS();
  });
}

const manifests = yamlFiles
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((file) =>
    documents(file)
      .filter((doc) => doc != null)
      .map((object) => ({ file, object: object as K8sObject })),
  );
const all = manifests.map((m) => m.object);
const ofKind = (kind: string) => all.filter((o) => o.kind === kind);
const deployments = () => ofKind('Deployment');
const deployment = (name: string) => {
  const found = deployments().find((d) => d.metadata.name === name);
  if (!found) throw new Error(`no Deployment ${name} in deploy/`);
  return found;
};
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
const podTemplates = (): [string, any][] => [
  ...deployments().map((d) => [`Deployment ${d.metadata.name}`, d.spec.template] as [string, unknown]),
  ...ofKind('Job').map((j) => [`Job ${j.metadata.name}`, j.spec.template] as [string, unknown]),
];
const env = (container: any, name: string) => container.env?.find((e: { name: string }) => e.name === name);
const configData = () => ofKind('ConfigMap').find((c) => c.metadata.name === 'surgeline-config')?.data ?? {};

describe('deploy/ Kubernetes manifests', () => {
  it('are all valid against their Kubernetes or KEDA schema', () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const { file, object } of manifests) {
      const model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(model, `${file}: no schema for ${object.apiVersion} ${object.kind}`).toBeDefined();
      expect(object.metadata?.name, `${file}: ${object.kind} without a name`).toBeTruthy();
      try {
        new model(object as never).validate();
      } catch (error) {
        throw new Error(`${file}: ${object.kind} ${object.metadata.name}: ${(error as Error).message}`);
      }
    }
  });

  it('kustomization.yaml lists every manifest but the example Secret, and names the image every Pod runs', () => {
    const [kustomization] = documents('kustomization.yaml') as {
      resources: string[];
      images: { name: string }[];
    }[];
    const expected = yamlFiles.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml');
    expect([...kustomization.resources].sort()).toEqual(expected);
    for (const resource of kustomization.resources)
      expect(existsSync(path.join(deployDir, resource))).toBe(true);
    const imageNames = kustomization.images.map((i) => i.name);
    for (const [where, template] of podTemplates()) {
      for (const c of template.spec.containers) expect(imageNames, where).toContain(c.image);
    }
  });

  it('has a Deployment for the API and one worker Deployment per queue, with the right role and queue', () => {
    const api = deployment('surgeline-api').spec.template.spec.containers[0];
    expect(api.command.slice(-2)).toEqual(['src/main.ts', 'api']);
    expect(deployment('surgeline-api').spec.replicas).toBeGreaterThanOrEqual(2);
    for (const queue of QUEUE_NAMES) {
      const worker = deployment(`surgeline-worker-${queue}`);
      const container = worker.spec.template.spec.containers[0];
      expect(container.command.slice(-2)).toEqual(['src/main.ts', 'worker']);
      expect(env(container, 'WORKER_QUEUES')?.value).toBe(queue);
      // KEDA owns the replicas: a replicas field would reset them at every apply.
      expect(worker.spec.replicas).toBeUndefined();
    }
  });

  it('probes /healthz for liveness and /readyz for readiness, on a port the container opens', () => {
    for (const d of deployments()) {
      for (const c of d.spec.template.spec.containers) {
        const where = `${d.metadata.name}/${c.name}`;
        const ports = (c.ports ?? []).flatMap((p: { name?: string; containerPort: number }) => [
          p.name,
          p.containerPort,
        ]);
        expect(c.livenessProbe?.httpGet?.path, where).toBe('/healthz');
        expect(c.readinessProbe?.httpGet?.path, where).toBe('/readyz');
        expect(ports, where).toContain(c.livenessProbe.httpGet.port);
        expect(ports, where).toContain(c.readinessProbe.httpGet.port);
        if (c.startupProbe) expect(c.startupProbe.httpGet?.path, where).toBe('/healthz');
      }
    }
  });

  it('runs every Pod as non-root, unprivileged, with resources', () => {
    for (const [where, template] of podTemplates()) {
      const pod = template.spec;
      expect(pod.securityContext?.runAsNonRoot, where).toBe(true);
      expect(pod.securityContext?.runAsUser, where).toBeGreaterThan(0);
      for (const c of pod.containers) {
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        expect(c.securityContext?.capabilities?.drop, where).toContain('ALL');
        expect(c.resources?.requests?.cpu, where).toBeTruthy();
        expect(c.resources?.requests?.memory, where).toBeTruthy();
        expect(c.resources?.limits?.memory, where).toBeTruthy();
        // A read-only root needs a writable /tmp (tsx's compile cache).
        if (c.securityContext?.readOnlyRootFilesystem) {
          expect(
            c.volumeMounts?.map((m: { mountPath: string }) => m.mountPath),
            where,
          ).toContain('/tmp');
        }
      }
    }
  });

  it('gives every Deployment a grace period above SHUTDOWN_TIMEOUT_MS plus its preStop pause', () => {
    const timeoutMs = Number(configData().SHUTDOWN_TIMEOUT_MS ?? 10_000);
    for (const d of deployments()) {
      const pod = d.spec.template.spec;
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      for (const c of pod.containers) {
        const sleep = c.lifecycle?.preStop?.exec?.command;
        const pauseS = sleep?.[0] === 'sleep' ? Number(sleep[1]) : 0;
        expect(grace * 1000, d.metadata.name).toBeGreaterThan(timeoutMs + pauseS * 1000);
      }
    }
  });

  it('reads secrets from the Secret surgeline-secrets by keys the example has, and config from the ConfigMap', () => {
    const example = ofKind('Secret').find((s) => s.metadata.name === 'surgeline-secrets');
    expect(example, 'secret.example.yaml').toBeDefined();
    const keys = Object.keys({ ...example?.stringData, ...example?.data });
    for (const [where, template] of podTemplates()) {
      for (const c of template.spec.containers) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) {
            expect(ref.name, `${where} ${e.name}`).toBe('surgeline-secrets');
            if (!ref.optional) expect(keys, `${where} ${e.name}`).toContain(ref.key);
          }
          const cmRef = e.valueFrom?.configMapKeyRef;
          if (cmRef) expect(Object.keys(configData()), `${where} ${e.name}`).toContain(cmRef.key);
          // No secret written into a manifest.
          if (
            ['ADMIN_TOKEN', 'DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'SMS_PROVIDER_TOKEN'].includes(e.name)
          ) {
            expect(e.value, `${where} ${e.name}`).toBeUndefined();
          }
        }
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) {
            expect(ofKind('ConfigMap').map((m) => m.metadata.name)).toContain(from.configMapRef.name);
          }
        }
      }
    }
    // The example holds placeholders, never a usable value.
    for (const value of Object.values(example?.stringData ?? {})) expect(String(value)).toMatch(/<[^>]+>/);
    expect(Object.keys(configData())).not.toContain('ADMIN_TOKEN');
    // The ConfigMap's settings are read once (MIGRATE_ON_START=0: the Job migrates).
    expect(configData().MIGRATE_ON_START).toBe('0');
  });

  it('migrates in a Job running `npm run db:migrate` (its script)', () => {
    const [job] = ofKind('Job');
    expect(job).toBeDefined();
    const script = (
      JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts['db:migrate'];
    const container = job.spec.template.spec.containers[0];
    expect(script).toContain(container.command.join(' '));
    expect(env(container, 'DATABASE_URL')?.valueFrom?.secretKeyRef).toBeTruthy();
    expect(['Never', 'OnFailure']).toContain(job.spec.template.spec.restartPolicy);
  });

  it('exposes the API through a Service that selects the API Pods on their http port', () => {
    const services = ofKind('Service');
    expect(services).toHaveLength(1);
    const api = deployment('surgeline-api').spec.template;
    expect(matches(services[0].spec.selector, api.metadata.labels)).toBe(true);
    const portNames = api.spec.containers[0].ports.map((p: { name: string }) => p.name);
    for (const p of services[0].spec.ports) expect(portNames).toContain(p.targetPort);
    // …and selects no worker.
    for (const d of deployments().filter((d) => d.metadata.name !== 'surgeline-api')) {
      expect(matches(services[0].spec.selector, d.spec.template.metadata.labels)).toBe(false);
    }
  });

  it('covers every Deployment by a PodDisruptionBudget that selects its Pods (and only one)', () => {
    const pdbs = ofKind('PodDisruptionBudget');
    expect(pdbs.map((p) => p.metadata.name).sort()).toEqual(['surgeline-api', 'surgeline-worker']);
    for (const d of deployments()) {
      const labels = d.spec.template.metadata.labels;
      expect(matches(d.spec.selector.matchLabels, labels), `${d.metadata.name} selects its own Pods`).toBe(
        true,
      );
      const covering = pdbs.filter((p) => matches(p.spec.selector.matchLabels, labels));
      expect(
        covering.map((p) => p.metadata.name),
        d.metadata.name,
      ).toHaveLength(1);
    }
    // The API keeps at least one replica through a drain.
    const api = pdbs.find((p) => p.metadata.name === 'surgeline-api');
    expect(api?.spec.minAvailable ?? 0).toBeGreaterThanOrEqual(1);
  });

  it('scales each worker Deployment with KEDA on its forecast gauge and its queue depth', () => {
    const scaled = ofKind('ScaledObject');
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(
      QUEUE_NAMES.map((q) => `surgeline-worker-${q}`).sort(),
    );
    for (const s of scaled) {
      const target = deployment(s.spec.scaleTargetRef.name);
      expect(s.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
      expect(s.spec.scaleTargetRef.apiVersion ?? 'apps/v1').toBe('apps/v1');
      const queue = env(target.spec.template.spec.containers[0], 'WORKER_QUEUES').value;
      expect(s.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(s.spec.maxReplicaCount).toBeGreaterThanOrEqual(s.spec.minReplicaCount);
      const queries = s.spec.triggers.map(
        (t: { type: string; metadata: { query: string; threshold: string } }) => {
          expect(t.type).toBe('prometheus');
          expect(Number(t.metadata.threshold)).toBeGreaterThan(0);
          return t.metadata.query;
        },
      );
      const forecast = queries.find((q: string) => q.includes('surgeline_recommended_replicas'));
      const depth = queries.find((q: string) => q.includes('surgeline_queue_jobs'));
      expect(forecast, s.metadata.name).toContain(`queue="${queue}"`);
      expect(depth, s.metadata.name).toContain(`queue="${queue}"`);
      expect(depth).toMatch(/state=~"[^"]*waiting/);
    }
  });
});
