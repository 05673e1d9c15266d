/**
 * The cross-resource analyzers, one positive and one negative case each, from YAML through
 * the real validation pipeline (so the resources are exactly what `sinew analyze` sees).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateText } from '../../src/config/validate.js';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze, analyzeInputs, analyzers, parsePath } from '../../src/config/analyze/index.js';
import { diagnosticCodes, type Diagnostic } from '../../src/api/diagnostics.js';
import type { Resource } from '../../src/api/resources/index.js';

function resources(yaml: string): Resource[] {
  const result = validateText('input.yaml', yaml);
  const errors = result.diagnostics.filter((d) => d.level === 'error');
  assert.deepEqual(errors, [], 'the test input itself must validate');
  return result.resources;
}

/** Analysis findings of the given code, as [resource name, path] pairs. */
function found(yaml: string, code: string): [string, string | undefined][] {
  return analyze(resources(yaml))
    .filter((d) => d.code === code)
    .map((d) => [d.resource!.name, d.path]);
}

function only(yaml: string, code: string): Diagnostic {
  const ds = analyze(resources(yaml)).filter((d) => d.code === code);
  assert.equal(ds.length, 1, JSON.stringify(ds, null, 2));
  return ds[0];
}

const service = (name: string, ns = 'default', labels = `app: ${name}`) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {${labels}}
  ports: [{name: http, port: 9080}]
`;

const vsTo = (name: string, destinations: string, extra = '', ns = 'default') => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${name}]${extra}
  http:
  - route:
${destinations}
`;

const dest = (host: string, subset?: string, weight?: number) =>
  `    - destination: {host: ${host}${subset ? `, subset: ${subset}` : ''}}${weight === undefined ? '' : `\n      weight: ${weight}`}`;

const dr = (name: string, host: string, subsets: string[], ns = 'default', extra = '') => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}}
spec:
  host: ${host}${extra}
  subsets:
${subsets.map((s) => `  - name: ${s}\n    labels: {version: ${s}}`).join('\n')}
`;

describe('analyzers', () => {
  test('every analysis code is documented with level, name and description', () => {
    for (const a of analyzers) {
      for (const code of a.codes) {
        assert.match(code, /^SNW10\d\d$/);
        const info = diagnosticCodes[code];
        assert.ok(info && info.name && info.description, code);
      }
    }
  });

  test('paths read back as written', () => {
    assert.deepEqual(parsePath('spec.http[0].route[12].destination'), ['spec', 'http', 0, 'route', 12, 'destination']);
    assert.deepEqual(parsePath('metadata.labels["app.kubernetes.io/name"]'), ['metadata', 'labels', 'app.kubernetes.io/name']);
  });
});

describe('SNW1001 subset not defined', () => {
  test('a route to a subset no DestinationRule defines is an error at the subset field', () => {
    const d = only(service('reviews') + vsTo('reviews', dest('reviews', 'v3')) + dr('reviews', 'reviews', ['v1', 'v2']), 'SNW1001');
    assert.equal(d.level, 'error');
    assert.equal(d.path, 'spec.http[0].route[0].destination.subset');
    assert.deepEqual(d.resource, { kind: 'VirtualService', namespace: 'default', name: 'reviews' });
    assert.match(d.message, /subset "v3" is not defined by DestinationRule default\/reviews .* \(it defines "v1", "v2"\)/);
  });

  test('with no DestinationRule for the host at all', () => {
    const d = only(service('reviews') + vsTo('reviews', dest('reviews', 'v1')), 'SNW1001');
    assert.match(d.message, /no DestinationRule applies to that host/);
  });

  test('a defined subset, found through the FQDN and in the service namespace, is fine', () => {
    const yaml =
      service('reviews', 'prod') +
      vsTo('reviews', dest('reviews.prod.svc.cluster.local', 'v1', 50) + '\n' + dest('reviews.prod.svc.cluster.local', 'v2', 50)) +
      dr('reviews', 'reviews', ['v1', 'v2'], 'prod');
    assert.deepEqual(found(yaml, 'SNW1001'), []);
  });

  test("a DestinationRule in the client's namespace hides the service namespace's one, as in Istio", () => {
    const yaml =
      service('reviews', 'prod') +
      vsTo('reviews', dest('reviews.prod.svc.cluster.local', 'v2')) +
      dr('reviews-client', 'reviews.prod.svc.cluster.local', ['v1'], 'default') +
      dr('reviews', 'reviews', ['v1', 'v2'], 'prod');
    assert.deepEqual(found(yaml, 'SNW1001'), [['reviews', 'spec.http[0].route[0].destination.subset']]);
  });

  test('a DestinationRule not exported to the client namespace does not count', () => {
    const yaml = service('reviews', 'prod') + vsTo('reviews', dest('reviews.prod.svc.cluster.local', 'v1')) + dr('reviews', 'reviews', ['v1'], 'prod', '\n  exportTo: ["."]');
    assert.equal(found(yaml, 'SNW1001').length, 1);
  });
});

describe('SNW1002 destination host not found', () => {
  test('a host no Service or ServiceEntry provides is an error with a suggestion', () => {
    const d = only(service('reviews') + vsTo('reviews', dest('reveiws')), 'SNW1002');
    assert.equal(d.level, 'error');
    assert.equal(d.path, 'spec.http[0].route[0].destination.host');
    assert.match(d.message, /host "reveiws" \(reveiws\.default\.svc\.cluster\.local\) is not provided .*did you mean "reviews\.default\.svc\.cluster\.local"\?/);
  });

  test('Services (their short name in their namespace, their FQDN anywhere) and ServiceEntries, wildcards included, provide hosts', () => {
    const se = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: NONE
`;
    const yaml =
      service('reviews', 'prod') +
      se +
      vsTo('reviews', dest('reviews', undefined, 40) + '\n' + dest('reviews.prod.svc.cluster.local', undefined, 30) + '\n' + dest('api.example.com', undefined, 30), '', 'prod');
    assert.deepEqual(found(yaml, 'SNW1002'), []);
  });

  test('regression: a destination "reviews.prod" is not the Service, as in Istio (IST0101), and the error says what to write', () => {
    const d = only(service('reviews', 'prod') + vsTo('reviews', dest('reviews.prod')), 'SNW1002');
    assert.equal(d.path, 'spec.http[0].route[0].destination.host');
    assert.match(d.message, /host "reviews\.prod" \(reviews\.prod\) is not provided .*Istio expands only names without dots.*write "reviews\.prod\.svc\.cluster\.local"/);
  });

  test('a Workload alone provides no host: only the Service that selects it does', () => {
    const workload = `---
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: ratings, labels: {app: ratings}}
spec:
  command: [node, ratings.js]
`;
    assert.equal(found(workload + vsTo('ratings', dest('ratings')), 'SNW1002').length, 1);
    assert.deepEqual(found(workload + service('ratings') + vsTo('ratings', dest('ratings')), 'SNW1002'), []);
  });
});

describe('SNW1003 gateway not found', () => {
  const gateway = (name: string, ns: string) => `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
`;

  test('a missing gateway, by name or namespace/name, is an error at its reference', () => {
    const yaml = service('web') + vsTo('web', dest('web'), '\n  gateways: [bookinfo-gatway, istio-system/public, mesh]') + gateway('bookinfo-gateway', 'default');
    const ds = analyze(resources(yaml)).filter((d) => d.code === 'SNW1003');
    assert.deepEqual(ds.map((d) => [d.path, d.level]), [['spec.gateways[0]', 'error'], ['spec.gateways[1]', 'error']]);
    assert.match(ds[0].message, /gateway "bookinfo-gatway" \(default\/bookinfo-gatway\) does not exist; did you mean "default\/bookinfo-gateway"\?/);
  });

  test('existing gateways in every reference form, and mesh, are fine', () => {
    const yaml =
      service('web') +
      vsTo('web', dest('web'), '\n  gateways: [bookinfo-gateway, edge/public, public.edge.svc.cluster.local, mesh]') +
      gateway('bookinfo-gateway', 'default') +
      gateway('public', 'edge');
    assert.deepEqual(found(yaml, 'SNW1003'), []);
  });

  test('gateways named in a match block are checked too', () => {
    const yaml = `${service('web')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - match: [{gateways: [missing]}]
    route: [{destination: {host: web}}]
`;
    assert.deepEqual(found(yaml, 'SNW1003'), [['web', 'spec.http[0].match[0].gateways[0]']]);
  });
});

describe('SNW1004/SNW1005 DestinationRule conflicts', () => {
  test('two DestinationRules for one host in one namespace warn, and a subset defined by both is an error', () => {
    const yaml = service('reviews') + dr('reviews-a', 'reviews', ['v1']) + dr('reviews-b', 'reviews.default.svc.cluster.local', ['v1', 'v2']);
    const ds = analyze(resources(yaml));
    const twice = ds.filter((d) => d.code === 'SNW1005');
    assert.deepEqual(twice.map((d) => [d.resource!.name, d.level, d.path]), [['reviews-b', 'warning', 'spec.host']]);
    assert.match(twice[0].message, /DestinationRule default\/reviews-a also applies to host reviews\.default\.svc\.cluster\.local/);
    const dup = ds.filter((d) => d.code === 'SNW1004');
    assert.deepEqual(dup.map((d) => [d.resource!.name, d.level, d.path]), [['reviews-b', 'error', 'spec.subsets[0].name']]);
  });

  test('a subset name repeated inside one DestinationRule (validation rejects it in files; the store may hold others)', () => {
    const rule: Resource = {
      apiVersion: 'networking.istio.io/v1',
      group: 'networking.istio.io',
      kind: 'DestinationRule',
      metadata: { name: 'reviews', namespace: 'default' },
      spec: { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v2' }, { name: 'v1' }] },
    };
    const ds = analyze([rule]).filter((d) => d.code === 'SNW1004');
    assert.deepEqual(ds.map((d) => d.path), ['spec.subsets[2].name']);
    assert.match(ds[0].message, /already defined earlier in this DestinationRule/);
  });

  test('the same host in two namespaces, or distinct subsets, are fine', () => {
    const yaml = service('reviews') + dr('reviews', 'reviews.default.svc.cluster.local', ['v1', 'v2']) + dr('reviews', 'reviews.default.svc.cluster.local', ['v1'], 'other');
    assert.deepEqual(found(yaml, 'SNW1004'), []);
    assert.deepEqual(found(yaml, 'SNW1005'), []);
  });
});

describe('SNW1006 unreachable route', () => {
  const vs = (rules: string) => `${service('web')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
${rules}
`;

  test('routes after a match block with only `uri: prefix: /`, or an empty one, warn', () => {
    const empty = vs(`  - name: everything\n    match: [{}]\n    route: [{destination: {host: web}}]\n  - match: [{headers: {x-canary: {exact: "1"}}}]\n    route: [{destination: {host: web}}]`);
    const d = only(empty, 'SNW1006');
    assert.equal(d.level, 'warning');
    assert.equal(d.path, 'spec.http[1]');
    assert.match(d.message, /spec\.http\[0\] \("everything"\) before it matches every request/);

    const slash = vs(
      `  - match: [{headers: {x-canary: {exact: "1"}}}, {uri: {prefix: /}}]\n    route: [{destination: {host: web}}]\n  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: web}}]\n  - route: [{destination: {host: web}}]`,
    );
    assert.deepEqual(found(slash, 'SNW1006'), [['web', 'spec.http[1]'], ['web', 'spec.http[2]']]);
  });

  test('routes after a rule without match are left to validation (SNW0224), not reported twice', () => {
    const noMatch = vs(`  - route: [{destination: {host: web}}]\n  - match: [{headers: {x-canary: {exact: "1"}}}]\n    route: [{destination: {host: web}}]`);
    assert.deepEqual(found(noMatch, 'SNW1006'), []);
    const validation = validateText('input.yaml', noMatch).diagnostics.filter((d) => d.code === 'SNW0224');
    assert.deepEqual(validation.map((d) => [d.level, d.path]), [['warning', 'spec.http[1]']]);
  });

  test('a catch-all last, or a prefix / narrowed by another condition, is fine', () => {
    const yaml = vs(
      `  - match: [{uri: {prefix: /}, headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: web}}]\n  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: web}}]\n  - route: [{destination: {host: web}}]`,
    );
    assert.deepEqual(found(yaml, 'SNW1006'), []);
  });
});

describe('SNW1007 route weights', () => {
  test('weights that do not add up to 100 warn, with the real split', () => {
    const d = only(service('reviews') + vsTo('reviews', dest('reviews', undefined, 50) + '\n' + dest('reviews', undefined, 25)), 'SNW1007');
    assert.equal(d.level, 'warning');
    assert.equal(d.path, 'spec.http[0].route');
    assert.match(d.message, /add up to 75, not 100 \(50 \+ 25\); traffic is split 66\.7%\/33\.3% in proportion/);
  });

  test('100 in total, or a lone destination with any weight, is fine', () => {
    assert.deepEqual(found(service('reviews') + vsTo('reviews', dest('reviews', undefined, 80) + '\n' + dest('reviews', undefined, 20)), 'SNW1007'), []);
    assert.deepEqual(found(service('reviews') + vsTo('reviews', dest('reviews', undefined, 30)), 'SNW1007'), []);
  });
});

describe('SNW1008 mTLS conflicts', () => {
  const pa = (name: string, ns: string, mode: string, selector?: string) => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${ns}}
spec:${selector ? `\n  selector: {matchLabels: {${selector}}}` : ''}
  mtls: {mode: ${mode}}
`;
  const drTls = (mode: string) => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    tls: {mode: ${mode}}
`;

  test('namespace STRICT with a DestinationRule that disables TLS is an error on the DestinationRule', () => {
    const d = only(service('reviews') + pa('default', 'default', 'STRICT') + drTls('DISABLE'), 'SNW1008');
    assert.equal(d.level, 'error');
    assert.equal(d.resource!.kind, 'DestinationRule');
    assert.equal(d.path, 'spec.trafficPolicy.tls.mode');
    assert.match(d.message, /requires mutual TLS \(STRICT\).*\(DISABLE\) for Service default\/reviews \(mode set by PeerAuthentication default\/default\)/);
  });

  test('workload-level DISABLE with ISTIO_MUTUAL, and a mesh-wide STRICT, conflict too', () => {
    assert.equal(found(service('reviews') + pa('reviews', 'default', 'DISABLE', 'app: reviews') + drTls('ISTIO_MUTUAL'), 'SNW1008').length, 1);
    assert.equal(found(service('reviews') + pa('mesh', 'istio-system', 'STRICT') + drTls('DISABLE'), 'SNW1008').length, 1);
  });

  test('matching modes, a more specific PeerAuthentication overriding, or UNSET inheriting, are fine', () => {
    assert.deepEqual(found(service('reviews') + pa('default', 'default', 'STRICT') + drTls('ISTIO_MUTUAL'), 'SNW1008'), []);
    assert.deepEqual(found(service('reviews') + pa('default', 'default', 'STRICT') + pa('reviews', 'default', 'PERMISSIVE', 'app: reviews') + drTls('DISABLE'), 'SNW1008'), []);
    assert.deepEqual(found(service('reviews') + pa('mesh', 'istio-system', 'PERMISSIVE') + pa('default', 'default', 'UNSET') + drTls('DISABLE'), 'SNW1008'), []);
    assert.deepEqual(found(service('reviews') + pa('other', 'default', 'STRICT', 'app: ratings') + drTls('DISABLE'), 'SNW1008'), []);
  });

  // Regression: the analyzer kept its own copy of the precedence rule, deciding between two
  // policies of one level by their order in the input, and skipping an UNSET one to the next of
  // its level. Istio (and the compiler, through src/semantics/peer-authentication.ts) takes the
  // oldest of a level, and an UNSET one inherits from the level above.
  test('of two namespace-wide policies the oldest decides, whatever the input order; an UNSET one inherits from the mesh', () => {
    const stamped = (yaml: string, at: string) => yaml.replace(/metadata: \{name: (\S+), namespace: (\S+)\}/, `metadata: {name: $1, namespace: $2, creationTimestamp: "${at}"}`);
    const newerStrict = stamped(pa('newer', 'default', 'STRICT'), '2024-02-01T00:00:00Z');
    assert.deepEqual(found(service('reviews') + newerStrict + stamped(pa('older', 'default', 'PERMISSIVE'), '2024-01-01T00:00:00Z') + drTls('DISABLE'), 'SNW1008'), []);
    assert.deepEqual(found(service('reviews') + newerStrict + stamped(pa('older', 'default', 'UNSET'), '2024-01-01T00:00:00Z') + drTls('DISABLE'), 'SNW1008'), []);
    const d = only(service('reviews') + stamped(pa('older', 'default', 'STRICT'), '2024-01-01T00:00:00Z') + stamped(pa('newer', 'default', 'PERMISSIVE'), '2024-02-01T00:00:00Z') + drTls('DISABLE'), 'SNW1008');
    assert.match(d.message, /mode set by PeerAuthentication default\/older/);
  });
});

describe('SNW1019 STRICT on a TCP port (retired)', () => {
  const pa = (name: string, ns: string, mode: string, extra = '') => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${ns}}
spec:
  mtls: {mode: ${mode}}${extra}
`;
  // Istio's tcp-echo sample: a TCP port, and an HTTP one beside it.
  const tcpEcho = `---
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: default}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000, targetPort: echo}, {name: http, port: 8080}]
---
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: tcp-echo, namespace: default, labels: {app: tcp-echo}}
spec:
  command: [node, echo.js]
  ports: [{name: echo, containerPort: 9001}, {name: http, containerPort: 8080}]
`;

  test('retired: sidecars terminate mutual TLS on TCP ports, so a STRICT TCP port is no longer reported', () => {
    assert.deepEqual(found(tcpEcho + pa('default', 'istio-system', 'STRICT'), 'SNW1019'), []);
    assert.ok(!analyzers.some((a) => a.codes.includes('SNW1019')), 'no analyzer reports a retired code');
  });
});

describe('SNW1009 workload without a service', () => {
  const workload = (name: string, labels: string) => `---
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: ${name}, labels: {${labels}}}
spec:
  command: [node, app.js]
`;

  test('a Workload no Service selects warns', () => {
    const d = only(service('reviews') + workload('ratings-v1', 'app: ratings, version: v1'), 'SNW1009');
    assert.equal(d.level, 'warning');
    assert.equal(d.path, 'metadata.labels');
    assert.match(d.message, /labels: app=ratings,version=v1/);
  });

  test('a Workload selected by a Service in its namespace is fine; one in another namespace is not enough', () => {
    assert.deepEqual(found(service('reviews') + workload('reviews-v1', 'app: reviews, version: v1'), 'SNW1009'), []);
    assert.equal(found(service('reviews', 'other') + workload('reviews-v1', 'app: reviews'), 'SNW1009').length, 1);
  });
});

describe('SNW1010 VirtualService host conflicts (istioctl IST0109)', () => {
  const stamped = (name: string, at: string, extra = '', ns = 'default') =>
    vsTo('reviews', dest('reviews'), extra, ns).replace('metadata: {name: reviews,', `metadata: {name: ${name}, creationTimestamp: "${at}",`);

  // Regression: the finding fell on whichever came second in the input and said "only one of
  // them is used" without saying which; sidecars use the oldest.
  test('two VirtualServices for one host on the mesh: an error on each, naming the oldest as the one in force', () => {
    const yaml = service('reviews') + stamped('reviews-canary', '2025-03-01T10:00:00Z') + stamped('reviews', '2025-03-01T10:05:00Z');
    const ds = analyze(resources(yaml)).filter((d) => d.code === 'SNW1010');
    assert.deepEqual(ds.map((d) => [d.level, d.resource!.name, d.path]), [
      ['error', 'reviews-canary', 'spec.hosts[0]'],
      ['error', 'reviews', 'spec.hosts[0]'],
    ]);
    const byName = Object.fromEntries(ds.map((d) => [d.resource!.name, d.message]));
    assert.match(byName['reviews-canary'], /host reviews\.default\.svc\.cluster\.local is claimed for the mesh \(sidecars\) by VirtualServices default\/reviews-canary, default\/reviews: sidecars use this one, the oldest, and ignore default\/reviews/);
    assert.match(byName.reviews, /sidecars use default\/reviews-canary, the oldest, and ignore this one for this host/);
  });

  test('without creation times the name decides which is named the oldest, as in Istio', () => {
    const yaml = service('reviews') + vsTo('reviews', dest('reviews')) + vsTo('reviews', dest('reviews')).replace('name: reviews,', 'name: a-reviews,');
    const inForce = analyze(resources(yaml)).find((d) => d.code === 'SNW1010' && d.resource!.name === 'reviews')!;
    assert.match(inForce.message, /sidecars use default\/a-reviews, the oldest/);
  });

  test('VirtualServices bound to one gateway merge there: no finding; the mesh plus a gateway still conflicts on the mesh', () => {
    const gw = `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`;
    const onGateway = service('reviews') + gw + stamped('one', '2025-03-01T10:00:00Z', '\n  gateways: [edge]') + stamped('two', '2025-03-01T10:01:00Z', '\n  gateways: [edge]');
    assert.deepEqual(found(onGateway, 'SNW1010'), []);
    const both = service('reviews') + gw + stamped('one', '2025-03-01T10:00:00Z', '\n  gateways: [edge, mesh]') + stamped('two', '2025-03-01T10:01:00Z');
    assert.deepEqual(found(both, 'SNW1010').map(([name]) => name).sort(), ['one', 'two']);
  });

  test('short names in different namespaces are different hosts; exportTo "." keeps two namespaces apart, "*" does not', () => {
    assert.deepEqual(found(service('reviews') + vsTo('reviews', dest('reviews')) + vsTo('reviews', dest('reviews.default'), '', 'other'), 'SNW1010'), []);
    const fqdn = (name: string, ns: string, exportTo: string) =>
      vsTo('reviews', dest('reviews.default.svc.cluster.local'), `\n  exportTo: [${exportTo}]`, ns).replace('hosts: [reviews]', 'hosts: [reviews.default.svc.cluster.local]').replace('name: reviews,', `name: ${name},`);
    assert.deepEqual(found(service('reviews') + fqdn('team-1', 'team-1', '"."') + fqdn('team-2', 'team-2', '"."'), 'SNW1010'), []);
    assert.deepEqual(found(service('reviews') + fqdn('team-1', 'team-1', '"*"') + fqdn('team-2', 'team-2', '"."'), 'SNW1010').map(([name]) => name).sort(), ['team-1', 'team-2']);
  });
});

describe('SNW1013 a host written <service>.<namespace>', () => {
  // Istio's ResolveShortnameToFQDN expands only names without dots: "reviews.default" is the
  // literal host reviews.default, so the compiler (like Istio) never applies such a rule to
  // the reviews Service (test/compiler/simulation.test.ts shows the route it takes).
  test('regression: hosts [reviews.default] on the mesh is reported, where the analyzer used to be silent', () => {
    const yaml = service('reviews') + dr('reviews', 'reviews', ['v1']) + vsTo('reviews', dest('reviews', 'v1')).replace('hosts: [reviews]', 'hosts: [reviews.default]');
    const d = only(yaml, 'SNW1013');
    assert.equal(d.level, 'warning');
    assert.deepEqual(d.resource, { kind: 'VirtualService', namespace: 'default', name: 'reviews' });
    assert.equal(d.path, 'spec.hosts[0]');
    assert.match(d.message, /host "reviews\.default" is not the Service reviews\.default\.svc\.cluster\.local: Istio expands only names without dots/);
    assert.match(d.message, /write "reviews\.default\.svc\.cluster\.local" \(or "reviews"\)/);
  });

  test('a DestinationRule host reviews.prod is reported; from another namespace only the FQDN is offered', () => {
    const d = only(service('reviews', 'prod') + dr('reviews', 'reviews.prod', ['v1']), 'SNW1013');
    assert.equal(d.path, 'spec.host');
    assert.match(d.message, /traffic policy and subsets do not apply to that Service; write "reviews\.prod\.svc\.cluster\.local"$/);
  });

  test('short names, FQDNs, names no Service has, gateway hosts and ServiceEntry hosts are fine', () => {
    const gw = `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`;
    const se = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy}
spec:
  hosts: [ratings.legacy]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
`;
    const yaml =
      service('reviews') +
      service('ratings', 'legacy') +
      gw +
      se +
      vsTo('reviews', dest('reviews')) +
      vsTo('reviews', dest('reviews')).replace('name: reviews,', 'name: fqdn,').replace('hosts: [reviews]', 'hosts: [reviews.default.svc.cluster.local]') +
      vsTo('reviews', dest('reviews')).replace('name: reviews,', 'name: edge,').replace('hosts: [reviews]', 'hosts: [reviews.default]\n  gateways: [edge]') +
      vsTo('ratings', dest('ratings.legacy')).replace('hosts: [ratings]', 'hosts: [ratings.legacy]') +
      dr('api', 'api.example', ['v1']);
    assert.deepEqual(found(yaml, 'SNW1013'), []);
  });
});

describe('SNW1014 a Service targetPort a selected Workload does not declare', () => {
  const workload = (name: string, ports: string) => `---
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: ${name}, labels: {app: tcp-echo}}
spec:
  command: [node, echo.js]
  ports: ${ports}
`;
  const tcpEcho = `---
apiVersion: v1
kind: Service
metadata: {name: tcp-echo}
spec:
  selector: {app: tcp-echo}
  ports:
  - {name: tcp, port: 9000}
  - {name: tcp-other, port: 9001}
  - {name: named, port: 9100, targetPort: echo}
`;

  test('regression: tcp-echo port 9001 (no Workload declares it) is reported, where the registry used to connect to the host port 9001', () => {
    const ds = analyze(resources(tcpEcho + workload('tcp-echo-v1', '[{name: tcp, containerPort: 9000}]'))).filter((d) => d.code === 'SNW1014');
    assert.deepEqual(
      ds.map((d) => [d.resource?.name, d.path, d.level]),
      [
        ['tcp-echo', 'spec.ports[1]', 'warning'],
        ['tcp-echo', 'spec.ports[2].targetPort', 'warning'],
      ],
    );
    assert.match(ds[0].message, /^Workload tcp-echo-v1 declares no containerPort 9001 \(it declares tcp 9000\): its replicas are not endpoints of port tcp-other 9001/);
    assert.match(ds[1].message, /declares no port named echo/);
  });

  test('ports declared by number or by name, and Workloads the Service does not select, are fine', () => {
    const yaml = tcpEcho + workload('tcp-echo-v1', '[{name: tcp, containerPort: 9000}, {containerPort: 9001}, {name: echo, containerPort: 9002}]') + workload('other', '[]').replace('app: tcp-echo', 'app: other');
    assert.deepEqual(found(yaml, 'SNW1014'), []);
  });
});

describe('scale', () => {
  test('thousands of resources are analyzed in linear time', () => {
    const make = (kind: string, name: string, spec: unknown, labels?: Record<string, string>): Resource => ({
      apiVersion: 'x',
      group: 'x',
      kind,
      metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
      spec,
    });
    const mesh = (services: number): Resource[] => {
      const all: Resource[] = [];
      for (let i = 0; i < services; i++) {
        all.push(make('Service', `s${i}`, { selector: { app: `s${i}` } }));
        all.push(make('Workload', `s${i}`, { command: ['x'] }, { app: `s${i}` }));
        all.push(make('VirtualService', `s${i}`, { hosts: [`s${i}`], http: [{ route: [{ destination: { host: `s${i}`, subset: 'v1' } }] }] }));
        all.push(make('DestinationRule', `s${i}`, { host: `s${i}`, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } }, subsets: [{ name: 'v1' }] }));
        all.push(make('PeerAuthentication', `s${i}`, { selector: { matchLabels: { app: `s${i}` } }, mtls: { mode: 'STRICT' } }));
      }
      return all;
    };
    /** CPU time of one analysis (this process's, so other work on the machine does not count). */
    const cpuMs = (all: Resource[]): number => {
      const before = process.cpuUsage();
      const findings = analyze(all);
      const used = process.cpuUsage(before);
      // Every route has its subset, every DestinationRule agrees with its PeerAuthentication.
      // (That the mesh cannot provide ISTIO_MUTUAL yet is validation's warning, SNW1012.)
      assert.deepEqual(findings, []);
      return (used.user + used.system) / 1000;
    };
    cpuMs(mesh(200)); // warm-up: compile the analyzers' code paths first
    const small = cpuMs(mesh(1000));
    const large = cpuMs(mesh(4000));
    // The first versions compared every Service with every DestinationRule, PeerAuthentication
    // and Workload: four times the input took sixteen times as long. Indexed, it takes about
    // four times as long; eight allows for the collector's share.
    assert.ok(large / small < 8, `4x the resources took ${(large / small).toFixed(1)}x the CPU time (${small.toFixed(0)} ms, then ${large.toFixed(0)} ms)`);
  });
});

describe('analyzeInputs', () => {
  test('a later file replaces an earlier resource of the same name, as kubectl apply would', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sinew-analyze-'));
    try {
      const first = join(dir, '1-reviews-v1.yaml');
      const second = join(dir, '2-reviews-v2.yaml');
      writeFileSync(first, service('reviews') + dr('reviews', 'reviews', ['v1', 'v2']) + vsTo('reviews', dest('reviews', 'v1')));
      writeFileSync(second, vsTo('reviews', dest('reviews', 'v3')));
      const result = await analyzeInputs([first, second]);
      assert.deepEqual(result.validation, []);
      assert.deepEqual(result.resources.map((r) => `${r.kind}/${r.metadata.name}`), ['Service/reviews', 'DestinationRule/reviews', 'VirtualService/reviews']);
      // No "two VirtualServices for one host": the second replaced the first. Its own subset
      // is checked, at the exact field of the second file.
      assert.deepEqual(
        result.analysis.map((d) => [d.code, d.source]),
        [['SNW1001', { file: second, line: 9, column: 44 }]],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('analyzeInputs over the config in force', () => {
  const manifest = (yaml: string) => {
    const [r] = resources(yaml);
    return { apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec };
  };
  const inForce = {
    revision: 7,
    manifests: [
      manifest(service('reviews')),
      manifest(vsTo('reviews', dest('reviews')).replace('metadata: {name: reviews,', 'metadata: {name: reviews-live, creationTimestamp: "2025-03-01T10:00:00.000Z", uid: u1, generation: 3, resourceVersion: "6",')),
    ],
  };

  test("a file's new resource is the youngest, as applying it would make it; one replacing a resource in force keeps its creation time", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sinew-analyze-layered-'));
    try {
      const file = join(dir, 'a-reviews.yaml');
      // Named to sort before reviews-live: without its stamp it would pass for the oldest.
      writeFileSync(file, vsTo('reviews', dest('reviews')).replace('name: reviews,', 'name: a-reviews,'));
      const result = await analyzeInputs([file], { inForce, now: () => Date.parse('2025-03-02T00:00:00Z') });
      assert.deepEqual(result.inForce, { revision: 7, resources: 2, replaced: 0 });
      const added = result.resources.find((r) => r.metadata.name === 'a-reviews')!;
      assert.equal(added.metadata.creationTimestamp, '2025-03-02T00:00:00.000Z');
      const conflict = result.analysis.filter((d) => d.code === 'SNW1010');
      assert.deepEqual(conflict.map((d) => [d.resource!.name, d.source?.file]), [['a-reviews', file], ['reviews-live', undefined]]);
      assert.match(conflict[0].message, /sidecars use default\/reviews-live, the oldest/);

      const replacing = join(dir, 'reviews-live.yaml');
      writeFileSync(replacing, vsTo('reviews', dest('reviews')).replace('name: reviews,', 'name: reviews-live,'));
      const replaced = await analyzeInputs([replacing], { inForce });
      assert.deepEqual(replaced.inForce, { revision: 7, resources: 2, replaced: 1 });
      const live = replaced.resources.find((r) => r.metadata.name === 'reviews-live')!;
      assert.deepEqual([live.metadata.creationTimestamp, live.metadata.uid, live.metadata.generation], ['2025-03-01T10:00:00.000Z', 'u1', 3]);
      assert.equal(live.source?.file, replacing, 'findings about it point at the file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Regression (gateway_credential_other_namespace): a credential Secret created beside the
// Gateway (default) while the gateway proxy runs in istio-system left the server out silently.
describe('SNW1021 a gateway credential in another namespace than the gateway proxy', () => {
  const secret = (name: string, namespace: string) =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: ${namespace}}\ntype: kubernetes.io/tls\ndata: {tls.crt: Y2VydA==, tls.key: a2V5}\n---\n`;
  const gateway = (namespace: string, selector: string, credential = 'bookinfo-credential') => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: ${namespace}}
spec:
  selector: {${selector}}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: ${credential}}
`;

  test('a Secret beside the Gateway in default, the ingress gateway in istio-system: a warning at credentialName naming both namespaces', () => {
    const d = only(secret('bookinfo-credential', 'default') + gateway('default', 'istio: ingressgateway'), 'SNW1021');
    assert.equal(d.level, 'warning');
    assert.equal(d.path, 'spec.servers[0].tls.credentialName');
    assert.match(d.message, /Secret bookinfo-credential is in default.*istio-system\/istio-ingressgateway.*own namespace, istio-system/);
  });

  test("the Secret in the gateway's namespace, a Secret nowhere, or a Gateway selecting no known gateway: nothing", () => {
    assert.deepEqual(found(secret('bookinfo-credential', 'istio-system') + secret('bookinfo-credential', 'default') + gateway('default', 'istio: ingressgateway'), 'SNW1021'), []);
    assert.deepEqual(found(gateway('default', 'istio: ingressgateway'), 'SNW1021'), []);
    assert.deepEqual(found(secret('bookinfo-credential', 'default') + gateway('default', 'app: my-own-gateway'), 'SNW1021'), []);
  });

  test('a gateway Workload of the mesh in its own namespace reads the Secret from there', () => {
    const workload = `apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: edge, namespace: edge, labels: {app: edge-gateway}}
spec:
  command: [node, edge.js]
---
`;
    assert.deepEqual(found(workload + secret('bookinfo-credential', 'edge') + gateway('default', 'app: edge-gateway'), 'SNW1021'), []);
    assert.deepEqual(found(workload + secret('bookinfo-credential', 'default') + gateway('default', 'app: edge-gateway'), 'SNW1021'), [['bookinfo-gateway', 'spec.servers[0].tls.credentialName']]);
  });
});
