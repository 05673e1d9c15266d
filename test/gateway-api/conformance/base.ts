/**
 * The suite's base manifests (conformance/base/manifests.yaml, conformance/mesh/manifests.yaml)
 * made runnable by `sinew up`: the namespaces, Gateways and Services as they are, and each
 * backend Deployment as a Sinew Workload of the same name, namespace and pod labels that runs
 * test/gateway-api/echo-server.ts, the suite's echo server (echo-basic's JSON for the gateway
 * backends, Istio echo's text for the mesh's `echo-advanced` ones). Its first container port
 * (the Service's targetPort, 3000 for echo-basic, 8080 for the mesh's echo) is the one it serves.
 *
 * The infrastructure namespace's `tls-backend` (echo-basic serving HTTPS with the suite's
 * `tls-checks-certificate`) runs outside the mesh, as the suite's does (no sidecar in front of
 * it: what a gateway sends it is the TLS it originates for a BackendTLSPolicy, or the client's
 * TLS passed through for a TLSRoute): the runner starts it and registers it with a
 * WorkloadEntry (TLS_BACKEND). The other TLS backends (`tls-backend-2`, the app-backend
 * namespace's `tls-backend`: echo-basic serving HTTPS on 8443 too) and the TCP echo
 * (`tcp-backend`: test/gateway-api/tcp-echo-server.ts) run in the mesh and read their
 * certificate from the Secret their Deployment mounts, as files the runner writes
 * (`BaseOptions.secretFiles`).
 *
 * Left out, each with the reason: the UDP backend (CoreDNS), the gRPC echo backends (only their
 * profile uses them), and the ConfigMap CoreDNS reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { repoRoot } from '../../support/reference-corpus.js';
import { fixturesDir } from './suite.js';

const echoServer = join(repoRoot, 'test/gateway-api/echo-server.ts');
const tcpEchoServer = join(repoRoot, 'test/gateway-api/tcp-echo-server.ts');

/**
 * Service ports that carry TLS their backend terminates, or raw TCP. Their names say no protocol
 * (`echo-tcp-tls`, none at all), which Istio sniffs and Sinew takes for HTTP, so the runner
 * declares them with appProtocol as their Services are made runnable: the sidecars then pass
 * their bytes through.
 */
const OPAQUE_SERVICE_PORTS: Record<string, string> = { 'tcp-backend': 'tcp', 'tls-backend': 'tls', 'tls-backend-2': 'tls' };

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: Record<string, unknown> };

/** The GatewayClass the tests' Gateways name, and its controller (the suite fills these placeholders in when it applies a manifest). */
export const GATEWAY_CLASS_NAME = 'sinew';
export const GATEWAY_CONTROLLER_NAME = 'sinew.dev/gateway-controller';

/** A manifest of the suite as it is applied: its placeholders filled in. */
export function fillPlaceholders(text: string): string {
  return text.replaceAll('{GATEWAY_CLASS_NAME}', GATEWAY_CLASS_NAME).replaceAll('{GATEWAY_CONTROLLER_NAME}', GATEWAY_CONTROLLER_NAME);
}

/**
 * The addresses the suite's caller provides for GatewayStaticAddresses (suite options
 * UsableNetworkAddresses and UnusableNetworkAddresses): a gateway of `sinew up` listens on
 * loopback, so 127.0.0.1 is usable; 192.0.2.1 (TEST-NET-1, RFC 5737) is no address of this
 * machine.
 */
export const USABLE_ADDRESSES = [{ type: 'IPAddress', value: '127.0.0.1' }];
export const UNUSABLE_ADDRESSES = [{ type: 'IPAddress', value: '192.0.2.1' }];

/**
 * A test's manifest as the suite's Applier applies it (utils/kubernetes/apply.go prepareGateway):
 * its placeholders filled in, and a Gateway's `PLACEHOLDER_UNUSABLE_ADDRS` and
 * `PLACEHOLDER_USABLE_ADDRS` addresses replaced by the caller's addresses, after the addresses
 * of the type "test/fake-invalid-type" (kept; all others dropped).
 */
export function prepareManifest(text: string): string {
  const filled = fillPlaceholders(text);
  if (!filled.includes('PLACEHOLDER_')) return filled;
  return parseAllDocuments(filled)
    .map((d) => {
      const doc = d.toJS() as (Doc & { spec?: { addresses?: { type?: string; value?: string }[] } }) | null;
      const addresses = doc?.kind === 'Gateway' ? doc.spec?.addresses : undefined;
      if (!doc) return '';
      if (!addresses?.length) return stringify(doc);
      const values = addresses.map((a) => a.value);
      doc.spec!.addresses = [
        ...addresses.filter((a) => a.type === 'test/fake-invalid-type'),
        ...(values.includes('PLACEHOLDER_UNUSABLE_ADDRS') ? UNUSABLE_ADDRESSES : []),
        ...(values.includes('PLACEHOLDER_USABLE_ADDRS') ? USABLE_ADDRESSES : []),
      ];
      return stringify(doc);
    })
    .join('---\n');
}

/** Backends not started, and why (the runner skips the tests that need them). */
export const BACKENDS_LEFT_OUT: Record<string, string> = {
  coredns: 'a UDP backend (CoreDNS): no UDPRoute support',
  'grpc-infra-backend-v1': 'a gRPC echo backend: the GATEWAY-GRPC profile is not run',
  'grpc-infra-backend-v2': 'a gRPC echo backend: the GATEWAY-GRPC profile is not run',
  'grpc-infra-backend-v3': 'a gRPC echo backend: the GATEWAY-GRPC profile is not run',
};

/**
 * The TLS backend the runner starts outside the mesh: `tls-backend` of the infrastructure
 * namespace, selected by its Services' `app: tls-backend`, answering on the ports its Services
 * name (the WorkloadEntry maps each of those names to where it listens).
 */
export const TLS_BACKEND = {
  name: 'tls-backend',
  namespace: 'gateway-conformance-infra',
  labels: { app: 'tls-backend' },
  /**
   * The names the suite's TLS Services give the port that targets 8443; `tls` is the name the
   * runner gives the base Service's unnamed port (runnableBase).
   */
  portNames: ['btls', 'https', 'https-1', 'https-2', 'tls'],
} as const;

/** The WorkloadEntry that puts the TLS backend, listening on `port` of loopback, behind its Services. */
export function tlsBackendEntry(port: number): string {
  return stringify({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: TLS_BACKEND.name, namespace: TLS_BACKEND.namespace },
    spec: { address: '127.0.0.1', labels: { ...TLS_BACKEND.labels }, ports: Object.fromEntries(TLS_BACKEND.portNames.map((n) => [n, port])) },
  });
}

/** How the runner starts the TLS backend: the echo server with the suite's certificate, on any free port. */
export function tlsBackendCommand(certFile: string, keyFile: string): { command: string; args: string[]; cwd: string; env: Record<string, string> } {
  return {
    command: process.execPath,
    args: ['--import', 'tsx', echoServer],
    cwd: repoRoot,
    env: { PORT: '0', HOST: '127.0.0.1', SINEW_WORKLOAD: TLS_BACKEND.name, SINEW_NAMESPACE: TLS_BACKEND.namespace, TLS_SERVER_CERT: certFile, TLS_SERVER_PRIVKEY: keyFile },
  };
}

export interface BaseOptions {
  /** Include the gateway profiles' base (conformance/base) — default true. */
  gateway?: boolean;
  /** Include the mesh profile's base (conformance/mesh) — default true. */
  mesh?: boolean;
  /** Only these backend Deployments (by name), when given. */
  backends?: readonly string[];
  /** The files of a TLS Secret the runner made (`namespace/name`), for the backends that mount it. */
  secretFiles?: (key: string) => { cert: string; key: string } | undefined;
}

/** The base manifests as `sinew up` reads them, one YAML stream. */
export function runnableBase(options: BaseOptions = {}): string {
  const files = [...(options.gateway !== false ? ['base/manifests.yaml'] : []), ...(options.mesh !== false ? ['mesh/manifests.yaml'] : [])];
  const out: Doc[] = [];
  for (const file of files) {
    const isMesh = file.startsWith('mesh/');
    for (const d of parseAllDocuments(fillPlaceholders(readFileSync(join(fixturesDir, file), 'utf8')))) {
      const doc = d.toJS() as Doc | null;
      if (!doc) continue;
      if (doc.kind === 'ConfigMap') continue;
      const outsideTheMesh = !isMesh && doc.metadata.name === TLS_BACKEND.name && doc.metadata.namespace === TLS_BACKEND.namespace;
      if (doc.kind === 'Deployment') {
        if (BACKENDS_LEFT_OUT[doc.metadata.name] && !isMesh) continue;
        // the runner starts it (TLS_BACKEND)
        if (outsideTheMesh) continue;
        if (options.backends && !options.backends.includes(doc.metadata.name)) continue;
        out.push(workloadOf(doc, isMesh, options.secretFiles));
        continue;
      }
      if (doc.kind === 'Service' && BACKENDS_LEFT_OUT[doc.metadata.name] && !isMesh) continue;
      const opaque = !isMesh && doc.kind === 'Service' ? OPAQUE_SERVICE_PORTS[doc.metadata.name] : undefined;
      if (opaque) for (const port of (doc.spec as { ports: { appProtocol?: string }[] }).ports) port.appProtocol ??= opaque;
      // A WorkloadEntry maps a Service port to where its workload listens by the port's name.
      if (outsideTheMesh && doc.kind === 'Service') for (const port of (doc.spec as { ports: { name?: string }[] }).ports) port.name ??= 'tls';
      out.push(doc);
    }
  }
  return out.map((d) => stringify(d)).join('---\n');
}

type Container = { ports?: { containerPort: number }[]; env?: { name: string; value?: string }[] };
type PodSpec = { containers: Container[]; volumes?: { secret?: { secretName: string } }[] };

function workloadOf(deployment: Doc, isMesh: boolean, secretFiles: BaseOptions['secretFiles']): Doc {
  const template = (deployment.spec as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }).template;
  const labels = template.metadata.labels;
  const container = template.spec.containers[0];
  const declared = container.ports?.[0]?.containerPort;
  const port = declared ?? 3000;
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
  const tcpEcho = env.TCP_ECHO_SERVER !== undefined;
  // echo-basic (no ports declared) serves HTTP on 3000 and h2c on 3001, which the Services'
  // second ports target; its TCP echo, TCP on 3000
  const ports = tcpEcho ? [{ name: 'tcp', containerPort: 3000 }] : declared !== undefined ? [{ name: 'http', containerPort: port }] : [{ name: 'http', containerPort: 3000 }, { name: 'h2c', containerPort: 3001 }];
  // A certificate mounted from a Secret (TLS_SERVER_CERT and its key): echo-basic then serves
  // TLS on 8443 too, from the files the runner wrote for that Secret.
  const secretName = template.spec.volumes?.find((v) => v.secret)?.secret?.secretName;
  const files = env.TLS_SERVER_CERT && secretName ? secretFiles?.(`${deployment.metadata.namespace}/${secretName}`) : undefined;
  const keyVariable = ['TLS_SERVER_PRIVKEY', 'TLS_SERVER_PRIV_KEY'].find((k) => k in env);
  if (files) ports.push({ name: 'tls', containerPort: 8443 });
  return {
    apiVersion: 'sinew.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: deployment.metadata.name, namespace: deployment.metadata.namespace, labels },
    spec: {
      replicas: 1,
      command: [process.execPath, '--import', 'tsx', tcpEcho ? tcpEchoServer : echoServer],
      // from the repository, where `--import tsx` resolves
      workingDir: repoRoot,
      env: [
        ...(isMesh ? [{ name: 'ECHO_FORMAT', value: 'istio' }] : []),
        ...(labels.version ? [{ name: 'SERVICE_VERSION', value: labels.version }] : []),
        ...(files && keyVariable ? [{ name: 'TLS_SERVER_CERT', value: files.cert }, { name: keyVariable, value: files.key }] : []),
      ],
      ports,
      readinessProbe: tcpEcho ? { tcpSocket: { port } } : { httpGet: { path: '/health', port } },
    },
  };
}
