/**
 * `sinew install` / `sinew uninstall`: the manifests that put the mesh into a cluster, for
 * `kubectl apply -f -` and `kubectl delete -f -` (as `linkerd install` prints them):
 *
 *  - the `sinew-system` namespace;
 *  - the CRDs of every Istio kind Sinew reads, at the versions Istio serves, with a status
 *    subresource (the spec is checked by the validating webhook with Sinew's own rules,
 *    which are stricter than any OpenAPI schema the server could apply);
 *  - a service account with the least the control plane needs: read Services, EndpointSlices,
 *    Endpoints, Pods, Nodes, Namespaces and the Istio kinds; write only the Istio kinds'
 *    status, and its own leader-election Lease in its namespace. No Secrets;
 *  - the control plane Deployment and its Service (push 15010, monitoring 15014, webhooks 443 ->
 *    15017, API 15080); the webhooks' serving certificate in a Secret, made here, whose CA the
 *    two webhook configurations carry;
 *  - the mutating (injection, Istio's selectors) and validating webhook configurations;
 *  - the ingress gateway (Deployment and LoadBalancer Service, 80 -> 8080, 443 -> 8443).
 *
 * `--set key=value` changes the values in `INSTALL_DEFAULTS`; an unknown key is an error that
 * lists the known ones.
 */
import { stringify } from 'yaml';
import { SinewError } from '../core/errors.js';
import { x509, webcrypto } from './x509.js';
import { GATEWAY_API_GROUP, ISTIO_KINDS } from './objects.js';
import { PLUGIN_CA_SECRET, SELF_SIGNED_CA_SECRET } from './ca-secret.js';
import { MESH_KEY_SECRET } from './mesh-key.js';
import { CONTROL_PLANE_SERVICE, DEFAULT_IMAGE, GATEWAY_SERVICE_ACCOUNT, PROXY_TOKEN_MOUNT, PROXY_TOKEN_PATH, SYSTEM_NAMESPACE, WEBHOOK_PORT, proxyTokenVolume } from './defaults.js';
import { CONTROL_PLANE_NODE_FLAGS } from '../core/node-flags.js';

export const INSTALL_DEFAULTS = Object.freeze({
  image: DEFAULT_IMAGE,
  imagePullPolicy: 'IfNotPresent',
  /** Control plane replicas; more than one share the work, and a Lease picks who writes status. */
  replicas: '1',
  'gateway.enabled': 'true',
  'gateway.replicas': '1',
  'gateway.serviceType': 'LoadBalancer',
  'resources.cpu': '500m',
  'resources.memory': '512Mi',
});

export type InstallValues = Record<keyof typeof INSTALL_DEFAULTS, string>;

/** Values from `--set k=v` pairs over the defaults; every unknown key or bad value is reported. */
export function installValues(sets: readonly string[]): InstallValues {
  const values: Record<string, string> = { ...INSTALL_DEFAULTS };
  const problems: string[] = [];
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) {
      problems.push(`--set ${set}: expected key=value`);
      continue;
    }
    const key = set.slice(0, eq);
    const value = set.slice(eq + 1);
    if (!(key in INSTALL_DEFAULTS)) problems.push(`--set ${set}: unknown key "${key}" (known: ${Object.keys(INSTALL_DEFAULTS).join(', ')})`);
    else if ((key === 'replicas' || key === 'gateway.replicas') && !/^\d+$/.test(value)) problems.push(`--set ${set}: ${key} must be a whole number`);
    else if (key === 'gateway.enabled' && value !== 'true' && value !== 'false') problems.push(`--set ${set}: gateway.enabled must be true or false`);
    else values[key] = value;
  }
  if (problems.length) throw new SinewError('SNW_ERR_INSTALL_VALUES', problems.join('\n'));
  return values as InstallValues;
}

type Obj = Record<string, unknown>;

const labels = { 'app.kubernetes.io/part-of': 'sinew' };

/** Every object of an installation, in the order kubectl should create them. */
export async function installObjects(values: InstallValues, options: { certificates?: WebhookCertificates } = {}): Promise<Obj[]> {
  const ns = SYSTEM_NAMESPACE;
  const certs = options.certificates ?? (await webhookCertificates(`${CONTROL_PLANE_SERVICE}.${ns}.svc`));
  const caBundle = Buffer.from(certs.caPem).toString('base64');
  const out: Obj[] = [];
  out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ...labels, 'istio-injection': 'disabled' } } });
  out.push(...ISTIO_KINDS.map(crd));
  out.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: CONTROL_PLANE_SERVICE, namespace: ns, labels } });
  const istioGroups = [...new Set(ISTIO_KINDS.map((k) => k.group))];
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'sinew-controlplane', labels },
    rules: [
      { apiGroups: [''], resources: ['services', 'endpoints', 'pods', 'nodes', 'namespaces'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: istioGroups, resources: ['*'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: istioGroups, resources: ['*/status'], verbs: ['get', 'update', 'patch'] },
      { apiGroups: [GATEWAY_API_GROUP], resources: ['*'], verbs: ['get', 'list', 'watch'] },
      // Gateway credentials (credentialName, certificateRefs), as istiod reads them; only
      // Secrets with a credential's keys keep their values in the control plane.
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
      // Proxies present their service-account tokens; the API server says whose they are.
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ],
  });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'sinew-controlplane', labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sinew-controlplane' },
    subjects: [{ kind: 'ServiceAccount', name: CONTROL_PLANE_SERVICE, namespace: ns }],
  });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'sinew-leader-election', namespace: ns, labels },
    rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }],
  });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'sinew-leader-election', namespace: ns, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sinew-leader-election' },
    subjects: [{ kind: 'ServiceAccount', name: CONTROL_PLANE_SERVICE, namespace: ns }],
  });
  // The mesh key and the CA's signing material every replica uses live in Secrets the first
  // replica creates (kube/mesh-key.ts, kube/ca-secret.ts; `cacerts` is the operator's).
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'sinew-mesh-key', namespace: ns, labels },
    rules: [
      { apiGroups: [''], resources: ['secrets'], resourceNames: [MESH_KEY_SECRET, SELF_SIGNED_CA_SECRET, PLUGIN_CA_SECRET], verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    ],
  });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'sinew-mesh-key', namespace: ns, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sinew-mesh-key' },
    subjects: [{ kind: 'ServiceAccount', name: CONTROL_PLANE_SERVICE, namespace: ns }],
  });
  out.push({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'sinew-webhook-tls', namespace: ns, labels },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(certs.certPem).toString('base64'), 'tls.key': Buffer.from(certs.keyPem).toString('base64') },
  });
  const appLabels = { app: CONTROL_PLANE_SERVICE, 'sinew.dev/component': 'controlplane' };
  out.push({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: CONTROL_PLANE_SERVICE, namespace: ns, labels: { ...labels, ...appLabels } },
    spec: {
      replicas: Number(values.replicas),
      selector: { matchLabels: appLabels },
      template: {
        metadata: { labels: { ...appLabels, 'sidecar.istio.io/inject': 'false' } },
        spec: {
          serviceAccountName: CONTROL_PLANE_SERVICE,
          containers: [
            {
              name: 'controlplane',
              image: values.image,
              imagePullPolicy: values.imagePullPolicy,
              command: ['sinew'],
              args: ['controlplane', '--kubernetes', '--host', '0.0.0.0', '--webhook-port', String(WEBHOOK_PORT), '--webhook-cert-dir', '/etc/sinew/webhook'],
              // the V8 flags `sinew up` starts its control plane with (V8 reads them at start)
              env: [{ name: 'NODE_OPTIONS', value: CONTROL_PLANE_NODE_FLAGS.join(' ') }],
              ports: [
                { name: 'push', containerPort: 15010 },
                { name: 'monitoring', containerPort: 15014 },
                { name: 'webhook', containerPort: WEBHOOK_PORT },
                { name: 'api', containerPort: 15080 },
              ],
              readinessProbe: { httpGet: { path: '/ready', port: 15080 }, periodSeconds: 3 },
              resources: { requests: { cpu: values['resources.cpu'], memory: values['resources.memory'] } },
              securityContext: { runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'webhook-tls', mountPath: '/etc/sinew/webhook', readOnly: true }],
            },
          ],
          volumes: [{ name: 'webhook-tls', secret: { secretName: 'sinew-webhook-tls' } }],
        },
      },
    },
  });
  out.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: CONTROL_PLANE_SERVICE, namespace: ns, labels },
    spec: {
      selector: appLabels,
      ports: [
        { name: 'tcp-push', port: 15010, targetPort: 15010 },
        { name: 'http-monitoring', port: 15014, targetPort: 15014 },
        { name: 'https-webhook', port: 443, targetPort: WEBHOOK_PORT },
        { name: 'http-api', port: 15080, targetPort: 15080 },
      ],
    },
  });
  const clientConfig = (path: string) => ({ service: { name: CONTROL_PLANE_SERVICE, namespace: ns, path, port: 443 }, caBundle });
  const podRule = [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }];
  const injector = (name: string, namespaceSelector: Obj, objectSelector: Obj) => ({
    name,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    reinvocationPolicy: 'Never',
    timeoutSeconds: 10,
    clientConfig: clientConfig('/inject'),
    rules: podRule,
    namespaceSelector,
    objectSelector,
  });
  out.push({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'sinew-sidecar-injector', labels },
    // Istio's two default injectors: labelled namespaces unless the pod opts out, and pods
    // that opt in where the namespace says nothing.
    webhooks: [
      injector('namespace.sidecar-injector.sinew.dev', { matchExpressions: [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }] }, { matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }] }),
      injector(
        'object.sidecar-injector.sinew.dev',
        { matchExpressions: [{ key: 'istio-injection', operator: 'DoesNotExist' }, { key: 'istio.io/rev', operator: 'DoesNotExist' }] },
        { matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'In', values: ['true'] }] },
      ),
    ],
  });
  out.push({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'sinew-validator', labels },
    webhooks: [
      {
        name: 'validation.sinew.dev',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        clientConfig: clientConfig('/validate'),
        rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: istioGroups, apiVersions: ['*'], resources: ['*'] }],
      },
    ],
  });
  if (values['gateway.enabled'] === 'true') {
    const gwLabels = { app: 'istio-ingressgateway', istio: 'ingressgateway' };
    // Its own service account: its token is what the gateway proves itself with to the control plane.
    out.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: GATEWAY_SERVICE_ACCOUNT, namespace: ns, labels: { ...labels, ...gwLabels } } });
    out.push({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'sinew-ingressgateway', namespace: ns, labels: { ...labels, ...gwLabels } },
      spec: {
        replicas: Number(values['gateway.replicas']),
        selector: { matchLabels: gwLabels },
        template: {
          metadata: { labels: { ...gwLabels, 'sidecar.istio.io/inject': 'false' } },
          spec: {
            serviceAccountName: GATEWAY_SERVICE_ACCOUNT,
            containers: [
              {
                name: 'istio-proxy',
                image: values.image,
                imagePullPolicy: values.imagePullPolicy,
                command: ['sinew'],
                args: ['proxy', '--xds', `${CONTROL_PLANE_SERVICE}.${ns}.svc:15010`, '--node-from-env', '--router', '--admin-port', '15000', '--metrics-port', '15090', '--health-port', '15021', '--metrics-host', '0.0.0.0', '--token-file', PROXY_TOKEN_PATH],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'SERVICE_ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
                  { name: 'ISTIO_META_WORKLOAD_NAME', value: 'sinew-ingressgateway' },
                ],
                ports: [
                  { name: 'http2', containerPort: 8080 },
                  { name: 'https', containerPort: 8443 },
                  { name: 'http-envoy-prom', containerPort: 15090 },
                ],
                readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021 }, periodSeconds: 2 },
                securityContext: { runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [{ name: 'podinfo', mountPath: '/etc/istio/pod' }, PROXY_TOKEN_MOUNT],
              },
            ],
            volumes: [{ name: 'podinfo', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } }, proxyTokenVolume()],
          },
        },
      },
    });
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'sinew-ingressgateway', namespace: ns, labels: { ...labels, ...gwLabels } },
      spec: {
        type: values['gateway.serviceType'],
        selector: gwLabels,
        ports: [
          { name: 'http2', port: 80, targetPort: 8080 },
          { name: 'https', port: 443, targetPort: 8443 },
        ],
      },
    });
  }
  return out;
}

function crd(kind: (typeof ISTIO_KINDS)[number]): Obj {
  const storage = kind.versions[0];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${kind.plural}.${kind.group}`, labels },
    spec: {
      group: kind.group,
      names: { kind: kind.kind, listKind: `${kind.kind}List`, plural: kind.plural, singular: kind.kind.toLowerCase(), categories: ['istio-io', kind.group.split('.')[0] + '-istio-io'] },
      scope: kind.namespaced ? 'Namespaced' : 'Cluster',
      versions: kind.versions.map((v) => ({
        name: v,
        served: true,
        storage: v === storage,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: `${kind.kind} (Istio ${kind.group}); checked by sinew's validating webhook` },
              status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
        },
        additionalPrinterColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
      })),
    },
  };
}

/** Objects as one multi-document YAML stream. */
export function toYaml(objects: readonly Obj[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

export interface WebhookCertificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A CA and a serving certificate for `dnsName` (ECDSA P-256, one year), for the webhooks. */
export async function webhookCertificates(dnsName: string): Promise<WebhookCertificates> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const caKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = new Date();
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: 'CN=sinew webhook CA',
    notBefore: now,
    notAfter,
    keys: caKeys as CryptoKeyPair,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const leafKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${dnsName}`,
    issuer: ca.subject,
    notBefore: now,
    notAfter,
    publicKey: (leafKeys as CryptoKeyPair).publicKey,
    signingKey: (caKeys as CryptoKeyPair).privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: dnsName }]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', (leafKeys as CryptoKeyPair).privateKey);
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  return { caPem: ca.toString('pem') + '\n', certPem: leaf.toString('pem') + '\n', keyPem };
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}
