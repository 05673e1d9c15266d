/**
 * Gateway servers that pass TLS through (Istio's PASSTHROUGH and AUTO_PASSTHROUGH), compiled for
 * the ingress gateway: the VirtualServices' `tls` routes become filter chains chosen by SNI on
 * the port's TCP listener, each routing to its weighted destinations without decrypting; the
 * chains are checked as the proxy checks them, and chosen as the proxy chooses them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FilterChain, Listener, ProxyConfig } from '../../src/api/proxy-config.js';
import { filterChainProblems, selectChain } from '../../src/proxy/transport/filter-chains.js';
import { makeCa, makeServerCertificate, b64 } from '../support/tls.js';
import { compile, parse } from './support/mesh.js';

const node = { mode: 'router' as const, workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 443: 18443, 15443: 25443 } } };

const services = `apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: web}
spec:
  selector: {app: nginx}
  ports: [{name: https, port: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: nginx-canary, namespace: web}
spec:
  selector: {app: nginx-canary}
  ports: [{name: https, port: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: mail, namespace: web}
spec:
  selector: {app: mail}
  ports: [{name: tls, port: 8443}]
`;

/**
 * istio.io "Ingress Gateway without TLS Termination", with a canary split and a second, newer
 * VirtualService (Istio takes VirtualServices in creation order).
 */
const passthrough = `${services}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway, namespace: web}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: PASSTHROUGH}
    hosts: [nginx.example.com, "*.mail.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx, namespace: web, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  hosts: [nginx.example.com]
  gateways: [mygateway]
  tls:
  - match: [{port: 443, sniHosts: [nginx.example.com]}]
    route:
    - {destination: {host: nginx, port: {number: 443}}, weight: 80}
    - {destination: {host: nginx-canary, port: {number: 443}}, weight: 20}
  tcp:
  - route: [{destination: {host: mail, port: {number: 8443}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mail, namespace: web, creationTimestamp: '2026-01-02T00:00:00Z'}
spec:
  hosts: ["*.mail.example.com", nginx.example.com]
  gateways: [web/mygateway]
  tls:
  - match: [{port: 8443, sniHosts: [imap.mail.example.com]}]
    route: [{destination: {host: mail}}]
  - match: [{sniHosts: [nginx.example.com, "*.mail.example.com"]}]
    route: [{destination: {host: mail}}]
`;

const listenerOn = (config: ProxyConfig, port: number): Listener => {
  const l = config.listeners.find((x) => x.address.port === port);
  assert.ok(l, `a listener on ${port}`);
  return l;
};

/** The chain the proxy would pick for a ClientHello with this SNI (and ALPN), as transport/filter-chains.ts picks it. */
const chosen = (l: Listener, serverName: string | undefined, alpn: string[] = []): FilterChain | undefined =>
  selectChain(
    (l.filterChains ?? []).map((c) => ({ ...c, match: c.match ?? {} })),
    { serverName, transportProtocol: 'tls', alpn },
  );

test('PASSTHROUGH: each tls route match is a chain by SNI with its weighted destinations; a name taken by an earlier rule stays with it; tcp rules are not used', () => {
  const config = compile(parse(passthrough), new Map(), node);
  const l = listenerOn(config, 18443);
  assert.equal(l.protocol, 'tcp');
  assert.deepEqual(filterChainProblems(l, config.secrets), [], 'the proxy accepts the listener');
  assert.deepEqual(
    l.filterChains!.map((c) => [c.name, c.match?.serverNames, c.tls, c.tcp?.routes.map((r) => r.destinations.map((d) => `${d.cluster} ${d.weight}`))]),
    [
      ['web/nginx/tls/0.0', ['nginx.example.com'], undefined, [['outbound|443||nginx.web.svc.cluster.local 80', 'outbound|443||nginx-canary.web.svc.cluster.local 20']]],
      // The port-8443 match does not apply on 443; nginx.example.com is the first VirtualService's already.
      ['web/mail/tls/1.0', ['*.mail.example.com'], undefined, [['outbound|8443||mail.web.svc.cluster.local 100']]],
    ],
  );
  assert.equal(l.tcp, undefined, 'no listener-wide TCP route: a PASSTHROUGH server routes by its tls rules only');
  assert.equal(chosen(l, 'nginx.example.com')?.name, 'web/nginx/tls/0.0');
  assert.equal(chosen(l, 'imap.mail.example.com')?.name, 'web/mail/tls/1.0');
  assert.equal(chosen(l, 'other.example.com'), undefined, 'an SNI no route names has no chain: the proxy closes the connection');
  assert.equal(chosen(l, undefined), undefined, 'nor does a client that sends no SNI');
});

test('PASSTHROUGH: a VirtualService bound to another gateway, or not exported to the gateway, adds no chain', () => {
  const config = compile(
    parse(
      passthrough
        .replace('gateways: [mygateway]', 'gateways: [othergateway]')
        .replace('gateways: [web/mygateway]', 'gateways: [web/mygateway]\n  exportTo: [istio-system]'),
    ),
    new Map(),
    node,
  );
  assert.equal(config.listeners.find((x) => x.address.port === 18443), undefined, 'no chain: no listener');
});

test('a TLS server terminating with its credential beside PASSTHROUGH on one port: a chain each, by SNI', async () => {
  const ca = await makeCa();
  const cert = await makeServerCertificate(ca, ['db.example.com']);
  const yaml = `${passthrough}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: dbgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls-db, protocol: TLS}
    tls: {mode: SIMPLE, credentialName: db-cred}
    hosts: [web/db.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: web}
spec:
  hosts: [db.example.com]
  gateways: [istio-system/dbgateway]
  tcp:
  - route: [{destination: {host: mail, port: {number: 8443}}}]
---
apiVersion: v1
kind: Secret
metadata: {name: db-cred, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: ${b64(cert.cert)}, tls.key: ${b64(cert.key)}}
`;
  const config = compile(parse(yaml), new Map(), node);
  const l = listenerOn(config, 18443);
  assert.deepEqual(filterChainProblems(l, config.secrets), []);
  const db = chosen(l, 'db.example.com');
  assert.equal(db?.name, 'tls.443.tls-db.dbgateway.istio-system');
  assert.deepEqual([db?.tls?.mode, db?.tls?.certificate], ['SIMPLE', 'kubernetes://istio-system/db-cred']);
  assert.deepEqual(db?.tcp?.routes.map((r) => r.destinations.map((d) => d.cluster)), [['outbound|8443||mail.web.svc.cluster.local']]);
  assert.equal(chosen(l, 'nginx.example.com')?.tls, undefined, 'passed through');
  assert.ok(config.secrets?.some((s) => s.name === 'kubernetes://istio-system/db-cred'));
});

test('AUTO_PASSTHROUGH: a chain per service port and subset the hosts cover, by the SNI of Istio mutual TLS and its ALPN', () => {
  const yaml = `${services}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: nginx, namespace: web}
spec:
  host: nginx
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ["*.web.svc.cluster.local"]
`;
  const config = compile(parse(yaml), new Map(), node);
  const l = listenerOn(config, 25443);
  assert.deepEqual(filterChainProblems(l, config.secrets), []);
  assert.deepEqual(
    l.filterChains!.map((c) => [c.match?.serverNames?.[0], c.tcp?.routes[0].destinations[0].cluster]),
    [
      ['outbound_.8443_._.mail.web.svc.cluster.local', 'outbound|8443||mail.web.svc.cluster.local'],
      ['outbound_.443_._.nginx-canary.web.svc.cluster.local', 'outbound|443||nginx-canary.web.svc.cluster.local'],
      ['outbound_.443_._.nginx.web.svc.cluster.local', 'outbound|443||nginx.web.svc.cluster.local'],
      ['outbound_.443_.v1_.nginx.web.svc.cluster.local', 'outbound|443|v1|nginx.web.svc.cluster.local'],
    ],
  );
  const v1 = chosen(l, 'outbound_.443_.v1_.nginx.web.svc.cluster.local', ['istio-peer-exchange', 'istio']);
  assert.equal(v1?.tcp?.routes[0].destinations[0].cluster, 'outbound|443|v1|nginx.web.svc.cluster.local');
  assert.equal(chosen(l, 'outbound_.443_.v1_.nginx.web.svc.cluster.local', ['h2']), undefined, 'only Istio mutual TLS passes through');
  assert.equal(chosen(l, 'nginx.web.svc.cluster.local', ['istio']), undefined);
});

test('PASSTHROUGH: sniHosts "*" is the chain without server names (any name, or none), which the proxy accepts', () => {
  const yaml = `${services}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: any, namespace: web}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    tls: {mode: PASSTHROUGH}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: any, namespace: web}
spec:
  hosts: ["*"]
  gateways: [any]
  tls:
  - match: [{sniHosts: [nginx.example.com]}]
    route: [{destination: {host: nginx, port: {number: 443}}}]
  - match: [{sniHosts: ["*"]}]
    route: [{destination: {host: mail, port: {number: 8443}}}]
`;
  const config = compile(parse(yaml), new Map(), node);
  const l = listenerOn(config, 18443);
  assert.deepEqual(filterChainProblems(l, config.secrets), []);
  assert.equal(chosen(l, 'nginx.example.com')?.tcp?.routes[0].destinations[0].cluster, 'outbound|443||nginx.web.svc.cluster.local');
  assert.equal(chosen(l, 'anything.else')?.tcp?.routes[0].destinations[0].cluster, 'outbound|8443||mail.web.svc.cluster.local');
  assert.equal(chosen(l, undefined)?.tcp?.routes[0].destinations[0].cluster, 'outbound|8443||mail.web.svc.cluster.local');
});
