/**
 * Istio's egress gateway routing (egress-gateway-tls-origination task,
 * test/mesh/fixtures/egress/egress-gateway-tls-origination.yaml) compiled for the sidecar and
 * for the egress gateway: mesh traffic for edition.cnn.com:80 goes to the gateway's Service
 * (subset cnn, Istio mutual TLS with SNI edition.cnn.com), and the gateway sends it to
 * edition.cnn.com:443 with TLS it originates.
 *
 * The gateway's Service is Istio's (ports `http2` 80 and `https` 443, as its chart names them).
 *
 * Regression (gateway_route_port_kept): a `port: 80` match at a gateway was kept in the route
 * and compared with the port the proxy listens on, which `sinew up` maps to a free one, so
 * the gateway answered 404 NR.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { explainRequest } from '../../src/compiler/explain.js';
import { compile, parse, request } from './support/mesh.js';

const task = readFileSync(join(import.meta.dirname, '../mesh/fixtures/egress/egress-gateway-tls-origination.yaml'), 'utf8').replaceAll('${CNN_PORT}', '443');
const egressGatewayService = `
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http2, port: 80}, {name: https, port: 443}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  address: 127.0.0.1
  labels: {istio: egressgateway}
  serviceAccount: istio-egressgateway-service-account
  ports: {http2: 18080, https: 18443}
---
`;
const resources = parse(egressGatewayService + task);

describe('the egress gateway task, compiled', () => {
  test('the sidecar sends edition.cnn.com:80 to the egress gateway, subset cnn, over Istio mutual TLS with the SNI of the host', () => {
    const sidecar = compile(resources, new Map(), { workload: 'curl-v1', labels: { app: 'curl' } });
    const cluster = 'outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local';
    assert.equal(request(sidecar, 'http://edition.cnn.com/politics').cluster, cluster);
    const c = sidecar.clusters.find((x) => x.name === cluster)!;
    assert.equal(c.tls?.mode, 'ISTIO_MUTUAL');
    assert.equal(c.tls?.sni, 'edition.cnn.com');
    assert.deepEqual(sidecar.endpoints.find((e) => e.clusterName === cluster)!.endpoints.map((e) => e.address), [{ host: '127.0.0.1', port: 18080 }]);
    // The Service port is named http2, so the sidecar speaks HTTP/2 to the gateway, as Istio's do.
    assert.equal(c.protocol, 'http2');
  });

  // Regression (gateway_http_server_http1_only): a gateway server of protocol HTTP took
  // HTTP/1.1 only, so sidecars calling the Service port named http2 could not reach it.
  test("Istio's egress-gateway task (HTTP): the sidecar speaks HTTP/2 to port 80, and the gateway's HTTP server takes it beside HTTP/1.1 (Istio's codec AUTO)", () => {
    // istio.io tasks/traffic-management/egress/egress-gateway, "Egress gateway for HTTP traffic".
    const httpTask = parse(egressGatewayService + `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn}
spec:
  hosts: [edition.cnn.com]
  ports: [{number: 80, name: http-port, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [edition.cnn.com]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-cnn}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: cnn}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-cnn-through-egress-gateway}
spec:
  hosts: [edition.cnn.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: cnn, port: {number: 80}}, weight: 100}]
  - match: [{gateways: [istio-egressgateway], port: 80}]
    route: [{destination: {host: edition.cnn.com, port: {number: 80}}, weight: 100}]
`);
    const sidecar = compile(httpTask, new Map(), { workload: 'curl-v1', labels: { app: 'curl' } });
    const cluster = 'outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local';
    assert.equal(request(sidecar, 'http://edition.cnn.com/politics').cluster, cluster);
    assert.equal(sidecar.clusters.find((x) => x.name === cluster)!.protocol, 'http2');
    const gateway = compile(httpTask, new Map(), { mode: 'router', workload: 'istio-egressgateway', namespace: 'istio-system', labels: { istio: 'egressgateway' }, ports: { gateway: { 80: { host: '127.0.0.1', port: 18080 } } } });
    const listener = gateway.listeners.find((l) => l.address.port === 18080)!;
    assert.equal(listener.protocol, 'http');
    assert.equal(listener.http?.http2, true, 'HTTP/2 with prior knowledge is taken on the HTTP server');
    const explained = explainRequest(gateway, { listener: listener.name, port: 18080, authority: 'edition.cnn.com', path: '/politics', method: 'GET', scheme: 'http' });
    assert.equal(explained.cluster, 'outbound|80||edition.cnn.com', JSON.stringify(explained));
  });

  test('the egress gateway, listening on 18080 for server port 80, routes edition.cnn.com to port 443 with TLS it originates', () => {
    const gateway = compile(resources, new Map(), { mode: 'router', workload: 'istio-egressgateway', namespace: 'istio-system', labels: { istio: 'egressgateway' }, ports: { gateway: { 80: { host: '127.0.0.1', port: 18080 } } } });
    const listener = gateway.listeners.find((l) => l.address.port === 18080)!;
    assert.ok(listener, `a listener on 18080: ${gateway.listeners.map((l) => l.name).join(', ')}`);
    // The proxy sees the port it listens on.
    const explained = explainRequest(gateway, { listener: listener.name, port: 18080, authority: 'edition.cnn.com', path: '/politics', method: 'GET', scheme: 'https' });
    assert.equal(explained.cluster, 'outbound|443||edition.cnn.com', JSON.stringify(explained));
    const origination = gateway.clusters.find((c) => c.name === 'outbound|443||edition.cnn.com')!;
    assert.deepEqual(origination.tls, { mode: 'SIMPLE', validationContext: 'cnn-ca-cacert', sni: 'edition.cnn.com', alpn: [] });
  });
});
