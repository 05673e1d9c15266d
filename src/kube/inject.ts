/**
 * Sidecar injection, one implementation for the mutating webhook (webhook.ts) and
 * `sinew kube-inject` (offline), so both give the same pod. Istio's shape
 * (pkg/kube/inject, the `sidecar` template):
 *
 *  - `istio-init`: an init container running `sinew iptables` with istio-iptables' flags and
 *    istio-init's defaults (outbound to 15001, inbound to 15006, UID 1337 left alone, 15090,
 *    15021 and 15020 never captured), adjusted by the `traffic.sidecar.istio.io/*` annotations;
 *  - `istio-proxy`: the proxy, as a native sidecar (an init container with
 *    `restartPolicy: Always`) where the server supports it, else the first regular container,
 *    whose postStart hook holds the app's containers until the proxy is ready (Istio's
 *    holdApplicationUntilProxyStarts);
 *  - HTTP readiness, liveness and startup probes of the app rewritten to the proxy's health
 *    port (`/app-health/<container>/<kind>z` on 15021), the originals kept in
 *    `ISTIO_KUBE_APP_PROBERS` for the proxy to run, as Istio does so that mutual TLS does not
 *    break kubelet's probes;
 *  - the `istio-token` volume: a projected service-account token for the audience `istio-ca`,
 *    mounted at /var/run/secrets/tokens, that the proxy presents to the control plane
 *    (`--token-file`; the control plane reviews it, token-review.ts);
 *  - `prometheus.io/*` annotations naming the merged metrics port 15020 (the app's own
 *    scrape settings are carried over into the merge);
 *  - labels `security.istio.io/tlsMode`, `service.istio.io/canonical-name` / `-revision`, and
 *    the `sidecar.istio.io/status` annotation naming what was added.
 *
 * Which pods: Istio's selection rules (injectRequired and the webhook's selectors), see
 * `injectionDecision`.
 */
import { PROXY_TOKEN_MOUNT, PROXY_TOKEN_PATH, proxyTokenVolume } from './defaults.js';

/** What injection needs to know beside the pod. */
export interface InjectSettings {
  /** The image with the `sinew` command (proxy, iptables). */
  image: string;
  /** The control plane's push address, `host:port`. */
  controlPlane: string;
  /** The server runs native sidecars (Kubernetes 1.29 on, SidecarContainers). */
  nativeSidecars?: boolean;
  imagePullPolicy?: string;
  /** `istio.io/rev` of this control plane (`default`). */
  revision?: string;
}

export const PROXY_UID = 1337;
export const PROXY_CONTAINER = 'istio-proxy';
export const INIT_CONTAINER = 'istio-init';
export const STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const INJECT_LABEL = 'sidecar.istio.io/inject';
const HEALTH_PORT = 15021;
const MERGED_METRICS_PORT = 15020;
/** Never captured inbound: the proxy's own metrics, health and merged-metrics ports (istio-init's -d). */
const PROXY_INBOUND_EXCLUDED = ['15090', '15021', '15020'];
/** Namespaces the webhook never injects (Istio's, plus the mesh's own). */
export const IGNORED_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage', 'istio-system', 'sinew-system']);

type Json = Record<string, any>;

// === which pods ===

export interface InjectionDecision {
  inject: boolean;
  /** Why, for logs and `kubectl describe`-style messages. */
  reason: string;
}

/**
 * Istio's rules, in order: never in the control-plane and Kubernetes namespaces, never with
 * host networking or twice; the pod's `sidecar.istio.io/inject` label (or, older, annotation)
 * "false" opts out; a namespace labelled `istio-injection=disabled` is out, one labelled
 * `istio-injection=enabled` (or `istio.io/rev`) is in; elsewhere only pods labelled
 * `sidecar.istio.io/inject: "true"` are.
 */
export function injectionDecision(pod: Json, namespace: { name: string; labels?: Record<string, string> }): InjectionDecision {
  const meta = pod.metadata ?? {};
  const podSays = meta.labels?.[INJECT_LABEL] ?? meta.annotations?.[INJECT_LABEL];
  const nsLabels = namespace.labels ?? {};
  if (IGNORED_NAMESPACES.has(namespace.name)) return { inject: false, reason: `namespace ${namespace.name} is never injected` };
  if (pod.spec?.hostNetwork) return { inject: false, reason: 'the pod uses the host network' };
  if (meta.annotations?.[STATUS_ANNOTATION]) return { inject: false, reason: 'already injected' };
  if (podSays !== undefined && podSays.toLowerCase() !== 'true' && podSays.toLowerCase() !== 'y' && podSays.toLowerCase() !== 'yes') {
    return { inject: false, reason: `the pod says ${INJECT_LABEL}: "${podSays}"` };
  }
  const nsSays = nsLabels['istio-injection'];
  if (nsSays === 'disabled') return { inject: false, reason: `namespace ${namespace.name} has istio-injection=disabled` };
  if (nsSays === 'enabled') return { inject: true, reason: `namespace ${namespace.name} has istio-injection=enabled` };
  if (nsLabels['istio.io/rev']) return { inject: true, reason: `namespace ${namespace.name} has istio.io/rev=${nsLabels['istio.io/rev']}` };
  if (podSays !== undefined) return { inject: true, reason: `the pod says ${INJECT_LABEL}: "${podSays}"` };
  return { inject: false, reason: `neither namespace ${namespace.name} (label istio-injection=enabled) nor the pod (label ${INJECT_LABEL}: "true") asks for a sidecar` };
}

// === the injected pod ===

/**
 * The pod (or pod template: metadata + spec) with the sidecar; the input is not changed.
 * `workload` is the Deployment (StatefulSet, ...) the pod belongs to, the name the proxy
 * introduces itself by (objects.ts workloadNameOf).
 */
export function injectPod(pod: Json, settings: InjectSettings, workload: string): Json {
  const out: Json = structuredClone(pod);
  out.metadata ??= {};
  out.spec ??= {};
  const meta = out.metadata;
  const spec = out.spec;
  const annotations: Record<string, string> = (meta.annotations ??= {});
  const labels: Record<string, string> = (meta.labels ??= {});
  const appContainers: Json[] = spec.containers ?? [];

  // Labels the mesh's telemetry and policy read (Istio's template).
  labels['security.istio.io/tlsMode'] = 'istio';
  labels['service.istio.io/canonical-name'] ??= labels['app.kubernetes.io/name'] ?? labels.app ?? workload;
  labels['service.istio.io/canonical-revision'] ??= labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';

  // Probes: rewritten to the proxy's health port, the originals handed to the proxy.
  const probers: Record<string, Json> = {};
  if (annotations['sidecar.istio.io/rewriteAppHTTPProbers'] !== 'false') {
    for (const c of appContainers) {
      for (const [field, kind] of [['readinessProbe', 'readyz'], ['livenessProbe', 'livez'], ['startupProbe', 'startupz']] as const) {
        const probe = c[field];
        if (!probe?.httpGet) continue;
        const path = `/app-health/${c.name}/${kind}`;
        // With Kubernetes' defaults filled in: the webhook sees the pod after the server's
        // defaulting, kube-inject before it, and both must write the same thing.
        const { path: probePath, port, scheme, httpHeaders } = probe.httpGet;
        probers[path] = {
          httpGet: { path: probePath ?? '/', port: resolvePort(port, c), scheme: scheme ?? 'HTTP', ...(httpHeaders ? { httpHeaders } : {}) },
          timeoutSeconds: probe.timeoutSeconds ?? 1,
        };
        c[field] = { ...probe, httpGet: { path, port: HEALTH_PORT, scheme: 'HTTP' } };
      }
    }
  }

  // Metrics: Prometheus scrapes the merged port; the app's own scrape settings join the merge.
  let appMetricsUrl: string | undefined;
  if (annotations['prometheus.io/scrape'] !== 'false' && annotations['sidecar.istio.io/enableMetricsMerge'] !== 'false') {
    if (annotations['prometheus.io/scrape'] === 'true' && annotations['prometheus.io/port']) {
      appMetricsUrl = `http://127.0.0.1:${annotations['prometheus.io/port']}${annotations['prometheus.io/path'] ?? '/metrics'}`;
    }
    annotations['prometheus.io/scrape'] = 'true';
    annotations['prometheus.io/port'] = String(MERGED_METRICS_PORT);
    annotations['prometheus.io/path'] = '/stats/prometheus';
  }

  const init = initContainer(meta, appContainers, settings);
  const proxy = proxyContainer(workload, appContainers, settings, probers, appMetricsUrl);
  const volumes: Json[] = [
    { name: 'istio-podinfo', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }, { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } }] } },
    // The token the proxy proves its service account with to the control plane (token-review.ts).
    proxyTokenVolume(),
  ];
  spec.volumes = [...(spec.volumes ?? []), ...volumes];
  if (settings.nativeSidecars) {
    spec.initContainers = [init, { ...proxy, restartPolicy: 'Always' }, ...(spec.initContainers ?? [])];
  } else {
    spec.initContainers = [init, ...(spec.initContainers ?? [])];
    // First, and the app waits for its postStart hook: kubelet starts containers in order
    // and the next one only once the previous one's postStart returned.
    spec.containers = [{ ...proxy, lifecycle: { postStart: { exec: { command: ['sinew', 'wait-ready', '--port', String(HEALTH_PORT)] } } } }, ...appContainers];
  }

  annotations[STATUS_ANNOTATION] = JSON.stringify({
    initContainers: settings.nativeSidecars ? [INIT_CONTAINER, PROXY_CONTAINER] : [INIT_CONTAINER],
    containers: settings.nativeSidecars ? [] : [PROXY_CONTAINER],
    volumes: volumes.map((v) => v.name),
    imagePullSecrets: null,
    revision: settings.revision ?? 'default',
  });
  return out;
}

/** A named probe port is the container's port of that name (the proxy cannot resolve names). */
function resolvePort(port: number | string, container: Json): number | string {
  if (typeof port === 'number' || /^\d+$/.test(port)) return Number(port);
  const named = (container.ports ?? []).find((p: Json) => p.name === port);
  return named ? named.containerPort : port;
}

/** istio-iptables' flags from the pod's `traffic.sidecar.istio.io/*` annotations (Istio's defaults otherwise). */
export function iptablesArgs(annotations: Record<string, string>, appContainers: Json[] = []): string[] {
  const a = annotations;
  const inboundPorts = a['traffic.sidecar.istio.io/includeInboundPorts'] ?? '*';
  const excludeInbound = [...PROXY_INBOUND_EXCLUDED, ...splitList(a['traffic.sidecar.istio.io/excludeInboundPorts'])];
  const args = [
    'iptables',
    '-p', '15001',
    '-z', '15006',
    '-u', String(PROXY_UID),
    '-m', 'REDIRECT',
    '-i', a['traffic.sidecar.istio.io/includeOutboundIPRanges'] ?? '*',
    '-x', a['traffic.sidecar.istio.io/excludeOutboundIPRanges'] ?? '',
    '-b', inboundPorts === '*' || inboundPorts === '' ? inboundPorts : inboundPorts,
    '-d', [...new Set(excludeInbound)].join(','),
  ];
  if (a['traffic.sidecar.istio.io/includeOutboundPorts']) args.push('-q', a['traffic.sidecar.istio.io/includeOutboundPorts']);
  if (a['traffic.sidecar.istio.io/excludeOutboundPorts']) args.push('-o', a['traffic.sidecar.istio.io/excludeOutboundPorts']);
  void appContainers;
  return args;
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

function initContainer(meta: Json, _apps: Json[], settings: InjectSettings): Json {
  return {
    name: INIT_CONTAINER,
    image: settings.image,
    ...(settings.imagePullPolicy ? { imagePullPolicy: settings.imagePullPolicy } : {}),
    command: ['sinew'],
    args: iptablesArgs(meta.annotations ?? {}),
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };
}

function proxyContainer(workload: string, apps: Json[], settings: InjectSettings, probers: Record<string, Json>, appMetricsUrl: string | undefined): Json {
  const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  // Admin (config dump, stats) stays on the pod's loopback, as Envoy's; metrics and health
  // listen on the pod's address for Prometheus and kubelet.
  const args = ['proxy', '--xds', settings.controlPlane, '--node-from-env', '--capture', '--admin-port', '15000', '--metrics-port', '15090', '--merged-metrics-port', String(MERGED_METRICS_PORT), '--health-port', String(HEALTH_PORT), '--metrics-host', '0.0.0.0', '--token-file', PROXY_TOKEN_PATH];
  if (appMetricsUrl) args.push('--app-metrics-url', appMetricsUrl);
  const env: Json[] = [
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('INSTANCE_IP', 'status.podIP'),
    fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    { name: 'ISTIO_META_WORKLOAD_NAME', value: workload },
    { name: 'ISTIO_META_APP_CONTAINERS', value: apps.map((c) => c.name).join(',') },
  ];
  if (Object.keys(probers).length) env.push({ name: 'ISTIO_KUBE_APP_PROBERS', value: JSON.stringify(probers) });
  return {
    name: PROXY_CONTAINER,
    image: settings.image,
    ...(settings.imagePullPolicy ? { imagePullPolicy: settings.imagePullPolicy } : {}),
    command: ['sinew'],
    args,
    env,
    ports: [{ name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: HEALTH_PORT }, initialDelaySeconds: 0, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 30 },
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
    },
    volumeMounts: [{ name: 'istio-podinfo', mountPath: '/etc/istio/pod' }, PROXY_TOKEN_MOUNT],
  };
}

// === kube-inject: workload kinds ===

/** Where a workload kind keeps its pod template. */
export function podTemplateOf(obj: Json): Json | undefined {
  switch (obj?.kind) {
    case 'Pod':
      return obj;
    case 'Deployment':
    case 'ReplicaSet':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'Job':
    case 'ReplicationController':
    case 'DeploymentConfig':
      return obj.spec?.template;
    case 'CronJob':
      return obj.spec?.jobTemplate?.spec?.template;
    default:
      return undefined;
  }
}

/**
 * `kube-inject` of one document: workloads get the sidecar in their pod template, other
 * documents pass through unchanged. A template that opts out (`sidecar.istio.io/inject:
 * "false"`) or is already injected is left as it is, as istioctl does.
 */
export function injectDocument(obj: Json, settings: InjectSettings): { object: Json; injected: boolean; reason?: string } {
  const template = podTemplateOf(obj);
  if (!template) return { object: obj, injected: false, reason: `${obj?.kind ?? 'document'} has no pod template` };
  const meta = template.metadata ?? {};
  const says = meta.labels?.[INJECT_LABEL] ?? meta.annotations?.[INJECT_LABEL];
  if (says !== undefined && !['true', 'y', 'yes'].includes(String(says).toLowerCase())) return { object: obj, injected: false, reason: `${INJECT_LABEL}: "${says}"` };
  if (meta.annotations?.[STATUS_ANNOTATION]) return { object: obj, injected: false, reason: 'already injected' };
  // The workload is the object itself (a bare Pod is its own), as objects.ts names it for the pods it makes.
  const injectedTemplate = injectPod(template, settings, obj.metadata?.name ?? 'unknown');
  if (obj.kind === 'Pod') return { object: injectedTemplate, injected: true };
  const out = structuredClone(obj);
  if (obj.kind === 'CronJob') out.spec.jobTemplate.spec.template = injectedTemplate;
  else out.spec.template = injectedTemplate;
  return { object: out, injected: true };
}
