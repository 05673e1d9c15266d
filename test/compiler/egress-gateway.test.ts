/**
 * Istio's egress gateway routing (egress-gateway-tls-origination task,
 * test/mesh/fixtures/egress/egress-gateway-tls-origination.yaml) compiled for the sidecar and
 * for the egress gateway: mesh traffic for edition.cnn.com:80 goes to the gateway's Service
 * (subset cnn, Istio mutual TLS with SNI edition.cnn.com), and the gateway sends it to
 * edition.cnn.com:443 with TLS it originates.
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
  ports: [{name: http, port: 80}, {name: https, port: 443}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  address: 127.0.0.1
  labels: {istio: egressgateway}
  serviceAccount: istio-egressgateway-service-account
  ports: {http: 18080, https: 18443}
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
