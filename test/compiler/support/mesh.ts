/**
 * Test helpers for compiler simulations: read Istio's samples, build Workloads and a
 * registry, compile for a proxy, and send synthetic requests through the result.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { validateText } from '../../../src/config/validate.js';
import { deepFreeze } from '../../../src/core/freeze.js';
import type { Resource } from '../../../src/api/resources/meta.js';
import type { ProxyConfig, ProxyNode } from '../../../src/api/proxy-config.js';
import { ServiceRegistry, type WorkloadInstance } from '../../../src/registry/index.js';
import { compileProxyConfig, explainRequest, type CompileInput, type Explanation } from '../../../src/compiler/index.js';
import { fixtures } from '../../support/reference-corpus.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Istio's samples, as the repository carries them (samples/, unchanged from istio/istio). */
export const istioSamples = fixtures.samples;

/** Validated resources from a YAML string; fails the test on any validation error. */
export function parse(yaml: string, file = 'test.yaml'): Resource[] {
  const result = validateText(file, yaml);
  const errors = result.diagnostics.filter((d) => d.level === 'error');
  assert.deepEqual(errors, [], `validation errors in ${file}`);
  return result.resources;
}

/** Validated resources of an Istio sample file, e.g. `bookinfo/networking/virtual-service-all-v1.yaml`. */
export function sample(relative: string, namespace = 'default'): Resource[] {
  const file = path.resolve(istioSamples, relative);
  const result = validateText(file, readFileSync(file, 'utf8'), { defaultNamespace: namespace });
  const errors = result.diagnostics.filter((d) => d.level === 'error');
  assert.deepEqual(errors, [], `validation errors in ${relative}`);
  return result.resources;
}

/**
 * A Sinew Workload built directly (its spec schema belongs to the config part and may not
 * exist yet in this tree): labels, service account, named container ports.
 */
export function workload(
  name: string,
  opts: { namespace?: string; labels: Record<string, string>; serviceAccount?: string; ports?: { name?: string; containerPort: number }[]; readinessProbe?: unknown },
): Resource {
  return deepFreeze({
    apiVersion: 'sinew.dev/v1alpha1',
    group: 'sinew.dev',
    kind: 'Workload',
    metadata: { name, namespace: opts.namespace ?? 'default', labels: opts.labels },
    spec: {
      command: ['node', `${name}.js`],
      serviceAccount: opts.serviceAccount,
      ports: opts.ports ?? [{ name: 'http', containerPort: 9080 }],
      ...(opts.readinessProbe ? { readinessProbe: opts.readinessProbe } : {}),
    },
  }) as Resource;
}

/** Bookinfo's Services (the upstream sample) and one Workload per version, with replicas on 127.0.0.1. */
export function bookinfo(): { resources: Resource[]; instances: Map<string, WorkloadInstance[]> } {
  const services = sample('bookinfo/platform/kube/bookinfo.yaml').filter((r) => r.kind === 'Service');
  const defs: [string, Record<string, string>, string][] = [
    ['productpage-v1', { app: 'productpage', version: 'v1' }, 'bookinfo-productpage'],
    ['details-v1', { app: 'details', version: 'v1' }, 'bookinfo-details'],
    ['reviews-v1', { app: 'reviews', version: 'v1' }, 'bookinfo-reviews'],
    ['reviews-v2', { app: 'reviews', version: 'v2' }, 'bookinfo-reviews'],
    ['reviews-v3', { app: 'reviews', version: 'v3' }, 'bookinfo-reviews'],
    ['ratings-v1', { app: 'ratings', version: 'v1' }, 'bookinfo-ratings'],
  ];
  const instances = new Map<string, WorkloadInstance[]>();
  const workloads = defs.map(([name, labels, sa], i) => {
    instances.set(`default/${name}`, [{ name: `${name}-0`, address: '127.0.0.1', ports: { 9080: 20000 + i } }]);
    return workload(name, { labels, serviceAccount: sa });
  });
  return { resources: [...services, ...workloads], instances };
}

export interface ProxyOptions {
  workload?: string;
  namespace?: string;
  labels?: Record<string, string>;
  mode?: ProxyNode['mode'];
  mesh?: CompileInput['mesh'];
  ports?: CompileInput['ports'];
}

/** Compiles the config of one proxy from resources (registry sources and networking config alike). */
export function compile(resources: readonly Resource[], instances: Map<string, WorkloadInstance[]>, proxy: ProxyOptions = {}): ProxyConfig {
  const registry = new ServiceRegistry();
  registry.setResources(resources);
  for (const [key, list] of instances) registry.setWorkloadInstances(key, list);
  const namespace = proxy.namespace ?? 'default';
  const mode = proxy.mode ?? 'sidecar';
  const workloadName = proxy.workload ?? 'productpage-v1';
  return compileProxyConfig({
    version: '1',
    config: { resources },
    registry: registry.snapshot(),
    node: { id: `${mode}~${workloadName}.${namespace}`, mode, workload: workloadName, namespace, labels: proxy.labels ?? { app: 'productpage', version: 'v1' } },
    mesh: proxy.mesh,
    ports: proxy.ports ?? { outbound: { host: '127.0.0.1', port: 15001 } },
  });
}

/** Sends a synthetic GET through the config: `url` like `http://reviews:9080/x`. */
export function request(config: ProxyConfig, url: string, init: { headers?: Record<string, string>; method?: string; listener?: string } = {}): Explanation {
  const u = new URL(url);
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return explainRequest(config, {
    listener: init.listener,
    port,
    authority: u.host,
    path: `${u.pathname}${u.search}`,
    method: init.method ?? 'GET',
    scheme: u.protocol.replace(':', ''),
    headers: init.headers,
  });
}
