/**
 * What Sinew accepts but does not enforce yet (src/api/codes/not-enforced.ts) is said, with a
 * permanent code, wherever a resource asks for it: by `validate`, and so by `apply` and
 * `analyze`. Each entry has an example here; for an entry marked `ignored` the test also
 * compiles the example for a sidecar, a second sidecar and a gateway with and without what it
 * asks for, and requires the same config: the table is true today, and enforcing something
 * without retiring its entry fails here.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/resources/meta.js';
import { diagnosticCodes } from '../../src/api/diagnostics.js';
import { notEnforcedEntries, notEnforcedCodes } from '../../src/api/codes/not-enforced.js';
import { analyzeInputs } from '../../src/config/analyze/index.js';
import { findNotEnforced, notEnforcedFinderCodes } from '../../src/config/not-enforced.js';
import { validateText } from '../../src/config/validate.js';
import { deepFreeze } from '../../src/core/freeze.js';
import type { FieldPath } from '../../src/core/path.js';
import { compile, workload, type ProxyOptions } from '../compiler/support/mesh.js';
import { describeDiagnostics } from './registry-helpers.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The mesh every example is compiled in: a Service and its Workload, a client, a gateway. */
const base = `
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: tcp-echo}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-echo}
spec:
  hosts: ["*"]
  gateways: [istio-system/edge]
  http:
  - route: [{destination: {host: echo}}]
`;

const workloads = [
  workload('echo-v1', { labels: { app: 'echo', version: 'v1' }, ports: [{ name: 'http', containerPort: 8080 }] }),
  workload('tcp-echo-v1', { labels: { app: 'tcp-echo' }, ports: [{ name: 'tcp', containerPort: 9000 }] }),
];
const instances = new Map([
  ['default/echo-v1', [{ name: 'echo-v1-0', address: '127.0.0.1', ports: { 8080: 28080 } }]],
  ['default/tcp-echo-v1', [{ name: 'tcp-echo-v1-0', address: '127.0.0.1', ports: { 9000: 29000 } }]],
]);

const proxies: ProxyOptions[] = [
  { workload: 'client', labels: { app: 'client' } },
  { workload: 'echo-v1', labels: { app: 'echo', version: 'v1' }, ports: { outbound: 15001, inbound: [{ containerPort: 8080, listen: { host: '127.0.0.1', port: 28080 }, app: { host: '127.0.0.1', port: 38080 } }] } },
  { mode: 'router' as const, workload: 'ingress', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 80: 18080, 443: 18443 } } },
];

/** One example per entry: resources that ask for it, and the path of the first finding. */
const examples: Record<string, { yaml: string; path: string }> = {
  SNW0515: {
    path: 'spec.subjectAltNames',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api}\nspec:\n  hosts: [api.example.com]\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n  resolution: DNS\n  subjectAltNames: ["spiffe://example.com/ns/api/sa/api"]\n',
  },
  SNW0580: {
    path: 'spec.trafficPolicy.tls.caCrl',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: echo}\nspec:\n  host: echo\n  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/ca.crl}\n',
  },
  SNW0581: {
    path: 'spec.servers[0].tls.caCrl',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: secure, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: ["*"]\n    tls: {mode: MUTUAL, serverCertificate: /etc/istio/certs/tls.crt, privateKey: /etc/istio/certs/tls.key, caCertificates: /etc/istio/certs/ca.crt, caCrl: /etc/istio/certs/ca.crl}\n',
  },
  SNW0525: {
    path: 'spec.servers[0].bind',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bound, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 8081, name: http, protocol: HTTP}\n    bind: 127.0.0.2\n    hosts: ["*"]\n',
  },
  SNW0528: {
    path: 'spec.servers[1]',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: mixed, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: {mode: SIMPLE, credentialName: a-cred}\n  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: [b.example.com]\n    tls: {mode: PASSTHROUGH}\n',
  },
  SNW0530: { path: 'spec.http[0].retries.retryRemoteLocalities', yaml: vsWithRetries('retryRemoteLocalities: true') },
  SNW0531: { path: 'spec.http[0].retries.retryIgnorePreviousHosts', yaml: vsWithRetries('retryIgnorePreviousHosts: false') },
  SNW0533: {
    path: 'spec.http[0].match[0].statPrefix',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: echo}\nspec:\n  hosts: [echo]\n  http:\n  - match: [{uri: {prefix: /api}, statPrefix: echo-api}]\n    route: [{destination: {host: echo}}]\n  - route: [{destination: {host: echo}}]\n',
  },
  SNW0534: {
    path: 'spec.tcp[0].match[0].destinationSubnets',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: tcp-echo}\nspec:\n  hosts: [tcp-echo]\n  tcp:\n  - match: [{port: 9000, destinationSubnets: [10.0.0.0/8], sourceSubnet: 192.168.0.0/16}]\n    route: [{destination: {host: tcp-echo}}]\n',
  },
  SNW0540: { path: 'spec.trafficPolicy.connectionPool.http.useClientProtocol', yaml: drWith('connectionPool: {http: {useClientProtocol: true}}') },
  SNW0541: { path: 'spec.trafficPolicy.connectionPool.http.maxConcurrentStreams', yaml: drWith('connectionPool: {http: {maxConcurrentStreams: 100}}') },
  SNW0542: { path: 'spec.trafficPolicy.connectionPool.http.http2KeepAlive', yaml: drWith('connectionPool: {http: {http2KeepAlive: {interval: 30s, timeout: 5s}}}') },
  SNW0543: { path: 'spec.trafficPolicy.loadBalancer.warmup.minimumPercent', yaml: drWith('loadBalancer: {warmup: {duration: 60s, minimumPercent: 20, aggression: 2}}') },
  SNW0544: { path: 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting', yaml: drWith('loadBalancer: {zoneAwareLbSetting: {enabled: true}}') },
  SNW0545: {
    path: 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes',
    yaml: drWith('loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 60s, attributes: [{name: SameSite, value: Strict}]}}}'),
  },
  SNW0546: { path: 'spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes', yaml: drWith('outlierDetection: {consecutive5xxErrors: 3, outlierDetectionHttpErrorCodes: [500, 503]}') },
  SNW0547: { path: 'spec.trafficPolicy.tunnel', yaml: drWith('tunnel: {protocol: CONNECT, targetHost: proxy.example.com, targetPort: 8080}') },
  SNW0548: { path: 'spec.trafficPolicy.proxyProtocol', yaml: drWith('proxyProtocol: {version: V1}') },
  SNW0549: { path: 'spec.trafficPolicy.retryBudget', yaml: drWith('retryBudget: {percent: 20}') },
  SNW0550: {
    path: 'spec.ingress',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: echo}\nspec:\n  workloadSelector: {labels: {app: echo}}\n  ingress:\n  - port: {number: 8080, protocol: HTTP, name: http}\n    defaultEndpoint: 127.0.0.1:8080\n',
  },
  SNW0551: {
    path: 'spec.egress[0].port',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default}\nspec:\n  egress:\n  - port: {number: 80, protocol: HTTP, name: http}\n    hosts: ["./*"]\n  - hosts: ["istio-system/*"]\n',
  },
  SNW0552: {
    path: 'spec.inboundConnectionPool',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: echo}\nspec:\n  workloadSelector: {labels: {app: echo}}\n  inboundConnectionPool: {http: {http1MaxPendingRequests: 10}}\n',
  },
  SNW0553: {
    path: 'spec.outboundTrafficPolicy.egressProxy',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default}\nspec:\n  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n    egressProxy: {host: egress.example.com, port: {number: 3128}}\n',
  },
  SNW0560: {
    path: '',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: vms}\nspec:\n  metadata: {labels: {app: echo}}\n  template: {serviceAccount: echo, ports: {http: 8080}}\n',
  },
  SNW0561: { path: 'spec.network', yaml: 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm-1}\nspec:\n  address: 10.0.0.5\n  network: network-2\n  labels: {app: echo}\n' },
  SNW0562: {
    path: 'spec.resolution',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: wildcard}\nspec:\n  hosts: ["*.example.com"]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DYNAMIC_DNS\n',
  },
  SNW0563: { path: 'spec.address', yaml: 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: local-socket}\nspec:\n  address: unix:///var/run/echo.sock\n  labels: {app: echo}\n' },
  SNW0571: { path: 'spec.tracing[0].customTags', yaml: telemetryWith('tracing: [{customTags: {team: {literal: {value: books}}}}]') },
  SNW0573: { path: 'spec.accessLogging[0].filter', yaml: telemetryWith('accessLogging: [{providers: [{name: envoy}], filter: {expression: "response.code >= 400"}}]') },
  SNW0575: { path: 'spec.metrics[0].overrides[0].match.metric', yaml: telemetryWith('metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]}]') },
  SNW0576: { path: 'spec.metrics[0].reportingInterval', yaml: telemetryWith('metrics: [{reportingInterval: 15s}]') },
  SNW0577: { path: 'spec.tracing[0].match.mode', yaml: telemetryWith('tracing: [{match: {mode: CLIENT}, randomSamplingPercentage: 50}]') },
};

function vsWithRetries(retries: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: echo}\nspec:\n  hosts: [echo]\n  http:\n  - route: [{destination: {host: echo}}]\n    retries: {attempts: 3, ${retries}}\n`;
}

function drWith(policy: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: echo}\nspec:\n  host: echo\n  trafficPolicy:\n    ${policy}\n`;
}

function telemetryWith(spec: string): string {
  return `apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: echo}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
}

/** Validated resources; the example must be valid (warnings allowed). */
function valid(yaml: string): { resources: Resource[]; warnings: ReturnType<typeof validateText>['diagnostics'] } {
  const result = validateText('example.yaml', yaml);
  const errors = result.diagnostics.filter((d) => d.level === 'error');
  assert.deepEqual(errors, [], describeDiagnostics(result.diagnostics));
  return { resources: result.resources, warnings: result.diagnostics.filter((d) => d.level === 'warning') };
}

/** `r` with the field at `path` taken out (an array item is spliced out). */
function withoutField(r: Resource, path: FieldPath): Resource {
  const copy = structuredClone({ ...r }) as unknown as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> | unknown[] = copy;
  for (const part of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[part] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete parent[last];
  return deepFreeze(copy) as unknown as Resource;
}

const baseResources = [...valid(base).resources, ...workloads];

describe('the table of what is not enforced yet', () => {
  test('every entry in force has a finder and an example, every finder an entry; codes are unique and documented', () => {
    const inForce = notEnforcedEntries.filter((e) => !e.retired).map((e) => e.code).sort();
    assert.deepEqual([...notEnforcedFinderCodes].sort(), inForce);
    assert.deepEqual(Object.keys(examples).sort(), inForce);
    assert.equal(new Set(notEnforcedEntries.map((e) => e.code)).size, notEnforcedEntries.length);
    for (const e of notEnforcedEntries) {
      assert.equal(diagnosticCodes[e.code], notEnforcedCodes[e.code], `${e.code} is one of Sinew's codes`);
      assert.equal(diagnosticCodes[e.code].level, 'warning');
    }
  });

  test('everyday config asks for nothing that is not enforced', () => {
    const everyday = `${base}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: echo
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 100}, http: {http1MaxPendingRequests: 10}}
    loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 30s, minimumPercent: 10, aggression: 1}}
    outlierDetection: {consecutive5xxErrors: 5}
    tls: {mode: SIMPLE}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo, subset: v1}}]
    retries: {attempts: 3, perTryTimeout: 2s, retryIgnorePreviousHosts: true}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: none}
spec: {}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing: [{randomSamplingPercentage: 10}]
  accessLogging: [{providers: [{name: envoy}]}]
  metrics: [{providers: [{name: prometheus}], overrides: [{match: {metric: ALL_METRICS}, disabled: false}]}]
`;
    assert.deepEqual(valid(everyday).warnings, []);
  });

  for (const entry of notEnforcedEntries.filter((e) => !e.retired)) {
    test(`${entry.code} ${entry.name}: a warning at the field that asks for it${entry.effect === 'ignored' ? ', and proxies get the same config without it' : ''}`, () => {
      const example = examples[entry.code];
      const { resources, warnings } = valid(example.yaml);
      const found = warnings.filter((d) => d.code === entry.code);
      assert.ok(found.length > 0, `no ${entry.code} for the example; got:\n${describeDiagnostics(warnings)}`);
      assert.equal(found[0].path ?? '', example.path);
      assert.equal(found[0].source?.file, 'example.yaml');
      assert.ok(found[0].message.length > 20, found[0].message);
      if (entry.effect !== 'ignored') return;

      // Without what it asks for, every proxy gets the same config: it is ignored today.
      const stripped = resources.flatMap((r) => {
        let out: Resource | undefined = r;
        for (const use of findNotEnforced(r).filter((u) => u.code === entry.code)) {
          const without = use.without ?? (use.path.length ? use.path : 'resource');
          out = without === 'resource' || !out ? undefined : withoutField(out, without);
        }
        return out ? [out] : [];
      });
      assert.notDeepEqual(stripped, resources, 'the example must lose something');
      for (const proxy of proxies) {
        assert.deepEqual(
          compile([...baseResources, ...stripped], instances, proxy),
          compile([...baseResources, ...resources], instances, proxy),
          `${proxy.workload}: ${entry.code} changed the compiled config; is it enforced now? Retire the entry.`,
        );
      }
    });
  }
});

describe('regression: accepted security config that did nothing said nothing', () => {
  // An AuthorizationPolicy with `spec: {}` (deny all) and a STRICT PeerAuthentication were
  // "created", `validate` said valid and `analyze` found nothing, while every request passed.
  const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all}
spec: {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: STRICT}
`;

  test('validate says nothing about either: the deny-all policy and STRICT mTLS are both enforced now', () => {
    const result = validateText('policies.yaml', policies);
    assert.equal(result.resources.length, 2, 'still accepted');
    assert.deepEqual(
      result.diagnostics.map((d) => [d.level, d.code, d.resource?.name, `${d.source?.line}:${d.source?.column}`, d.path]),
      // Both are enforced now: SNW0505 retired (test/compiler/peer-authentication.test.ts,
      // test/mesh/authentication.test.ts), SNW0500 retired (test/proxy/authorization.test.ts).
      [],
    );
    // `spec: {}` reaches every inbound listener as an RBAC filter that allows nothing
    // (test/proxy/authorization.test.ts sends the requests it denies).
    const config = compile([...baseResources, ...result.resources], instances, proxies[1]);
    const inbound = config.listeners.filter((l) => l.direction === 'inbound' && l.http);
    assert.ok(inbound.length > 0);
    for (const l of inbound) {
      const rbac = l.http!.filters?.find((f) => f.name === 'sinew.filters.http.rbac');
      assert.deepEqual(rbac?.config, { policies: [{ name: 'ns[default]-policy[deny-all]', action: 'ALLOW', rules: [] }], destinationPort: 8080 });
    }
  });

  test('analyze reports neither', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sinew-not-enforced-'));
    try {
      const file = join(dir, 'policies.yaml');
      writeFileSync(file, policies);
      const result = await analyzeInputs([file]);
      assert.deepEqual(result.validation.map((d) => d.code), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('moved from analysis: TLS the mesh cannot provide yet', () => {
  // Regression (tls_files_not_read): certificates named by file were warned about (SNW1011,
  // SNW0520) and not read; the proxies read them now, and only a CRL is left unread.
  test('Gateway HTTPS servers with certificates named by file, by credentialName, PASSTHROUGH and plain HTTP warn about nothing', () => {
    const gateway = (servers: string) =>
      `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n${servers}`;
    const { warnings } = valid(
      gateway(`  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, serverCertificate: /etc/istio/certs/tls.crt, privateKey: /etc/istio/certs/tls.key}
  - port: {number: 9443, name: https-mutual-files, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, serverCertificate: /etc/istio/certs/tls.crt, privateKey: /etc/istio/certs/tls.key, caCertificates: /etc/istio/certs/ca.crt}
  - port: {number: 8443, name: https-credential, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, credentialName: edge-credential}
`),
    );
    assert.deepEqual(warnings.map((d) => [d.code, d.path]), []);
    const passthrough = valid(
      gateway(`  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {httpsRedirect: true}
`),
    );
    assert.deepEqual(passthrough.warnings, []);
  });

  test('a DestinationRule originating TLS from files warns about nothing but a CRL', () => {
    const dr = (tls: string) => valid(`apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ext}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    tls: ${tls}\n`);
    assert.deepEqual(dr('{mode: MUTUAL, clientCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem}').warnings, []);
    assert.deepEqual(dr('{mode: SIMPLE, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/ca.crl}').warnings.map((d) => [d.code, d.path]), [['SNW0580', 'spec.trafficPolicy.tls.caCrl']]);
  });

  test('no DestinationRule tls warns: ISTIO_MUTUAL and credentialName (SIMPLE, MUTUAL) are enforced now, DISABLE and plain SIMPLE ask nothing', () => {
    // The shape of Istio's samples/bookinfo/networking/destination-rule-all-mtls.yaml (istio/istio @ 86c9f01fd735).
    const mtls = valid(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
  subsets:
  - {name: v1, labels: {version: v1}}
`);
    // Sidecars hold workload certificates and speak ISTIO_MUTUAL (test/compiler/peer-authentication.test.ts).
    assert.deepEqual(mtls.warnings, []);
    const ext = valid(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext}
spec:
  host: api.example.com
  trafficPolicy:
    tls: {mode: SIMPLE}
    portLevelSettings:
    - port: {number: 8443}
      tls: {mode: MUTUAL, credentialName: client-credential}
  subsets:
  - name: plain
    labels: {v: "1"}
    trafficPolicy: {tls: {mode: DISABLE}}
`);
    // TLS origination from a Secret (SNW1012 retired): test/compiler/client-credentials.test.ts, test/mesh/egress.test.ts.
    assert.deepEqual(ext.warnings.map((d) => [d.code, d.path]), []);
  });
});
