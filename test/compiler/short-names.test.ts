/**
 * How a host written in config names a service, compiled and analyzed from the same YAML:
 * Istio's ResolveShortnameToFQDN expands only names without dots (with the namespace of the
 * resource), so `reviews.default` is not the reviews Service. The compiler routes as Istio
 * does, and `sinew analyze` says so where the rule would surprise.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/resources/meta.js';
import { analyze } from '../../src/config/analyze/index.js';
import type { WorkloadInstance } from '../../src/registry/index.js';
import { compile, parse, request } from './support/mesh.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const MESH = parse(`
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: ${REVIEWS}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`);

/** A VirtualService sending everything to v1, for `host`, written in `namespace`. */
function allToV1(host: string, namespace = 'default', destination = REVIEWS): Resource[] {
  return parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-v1, namespace: ${namespace}}
spec:
  hosts: [${host}]
  http: [{route: [{destination: {host: ${destination}, subset: v1}}]}]
`);
}

const clusterFor = (resources: Resource[], url: string, proxyNamespace = 'default') =>
  request(compile([...MESH, ...resources], new Map<string, WorkloadInstance[]>(), { namespace: proxyNamespace, labels: { app: 'client' } }), url).cluster;

const codes = (resources: Resource[]) => analyze([...MESH, ...resources]).map((d) => `${d.code} ${d.resource?.kind} ${d.path}`);

describe('a VirtualService host names the reviews Service', () => {
  test('as a short name in its namespace, or as the FQDN from anywhere', () => {
    assert.equal(clusterFor(allToV1('reviews'), 'http://reviews:9080/'), `outbound|9080|v1|${REVIEWS}`);
    assert.equal(clusterFor(allToV1(REVIEWS, 'other'), 'http://reviews:9080/'), `outbound|9080|v1|${REVIEWS}`);
    assert.deepEqual(codes(allToV1('reviews')), []);
    assert.deepEqual(codes(allToV1(REVIEWS, 'other')), []);
  });

  test('a short name written in another namespace means a Service of that namespace', () => {
    assert.equal(clusterFor(allToV1('reviews', 'other'), 'http://reviews:9080/'), `outbound|9080||${REVIEWS}`);
  });

  test('regression: hosts [reviews.default] is not the Service: the compiler keeps the default route, and analyze now says why', () => {
    const vs = allToV1('reviews.default');
    // Istio reads the host as written: the rule is for the literal host reviews.default.
    for (const url of ['http://reviews:9080/', 'http://reviews.default:9080/', `http://${REVIEWS}:9080/`]) {
      assert.equal(clusterFor(vs, url), `outbound|9080||${REVIEWS}`, url);
    }
    assert.deepEqual(codes(vs), ['SNW1013 VirtualService spec.hosts[0]']);
  });

  test('regression: a destination reviews.default names a cluster no service backs, and analyze reports it as Istio does (IST0101)', () => {
    const vs = allToV1('reviews', 'default', 'reviews.default');
    const config = compile([...MESH, ...vs], new Map(), { labels: { app: 'client' } });
    const r = request(config, 'http://reviews:9080/');
    assert.equal(r.cluster, 'outbound|9080|v1|reviews.default');
    assert.equal(r.destinations?.[0].exists, false);
    assert.deepEqual(codes(vs).sort(), ['SNW1001 VirtualService spec.http[0].route[0].destination.subset', 'SNW1002 VirtualService spec.http[0].route[0].destination.host']);
  });
});
