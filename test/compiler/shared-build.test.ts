/**
 * The control plane compiles a sidecar's outbound config once per proxy class and reuses it
 * (compileSharedOutbound). Reuse must be invisible: a proxy compiled with the shared part gets
 * byte-identical config to one compiled alone, for every proxy of the class.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compileProxyConfig, compileSharedOutbound, proxyClassKey, type CompileInput } from '../../src/compiler/index.js';
import { ServiceRegistry } from '../../src/registry/index.js';
import { bookinfo, parse, sample } from './support/mesh.js';

describe('shared outbound build', () => {
  const { resources: base, instances } = bookinfo();
  const resources = [...base, ...sample('bookinfo/networking/destination-rule-all.yaml'), ...sample('bookinfo/networking/virtual-service-reviews-test-v2.yaml')];
  const registry = new ServiceRegistry();
  registry.setResources(resources);
  for (const [key, list] of instances) registry.setWorkloadInstances(key, list);
  const snapshot = registry.snapshot();
  const input = (workload: string, labels: Record<string, string>, port: number): CompileInput => ({
    version: '7',
    config: { resources },
    registry: snapshot,
    node: { id: `sidecar~${workload}-0.default`, mode: 'sidecar', workload, namespace: 'default', labels },
    ports: { outbound: { host: '127.0.0.1', port }, inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: port + 1 }, app: { host: '127.0.0.1', port: port + 2 } }] },
  });

  const proxies = [
    input('productpage-v1', { app: 'productpage', version: 'v1' }, 20000),
    input('reviews-v1', { app: 'reviews', version: 'v1' }, 20010),
    input('reviews-v2', { app: 'reviews', version: 'v2' }, 20020),
    input('ratings-v1', { app: 'ratings', version: 'v1' }, 20030),
  ];

  test('a config compiled with the shared part equals one compiled alone', () => {
    const cache = new Map<string, ReturnType<typeof compileSharedOutbound>>();
    for (const p of proxies) {
      const key = proxyClassKey(p)!;
      assert.ok(key, 'sidecars have a class');
      if (!cache.has(key)) cache.set(key, compileSharedOutbound(p, key));
      const alone = compileProxyConfig(p);
      const reused = compileProxyConfig(p, cache.get(key));
      assert.equal(JSON.stringify(reused), JSON.stringify(alone), `${p.node.workload}: identical config`);
    }
  });

  test('proxies that no selector tells apart share one class; a sourceLabels rule splits them', () => {
    const reviewsV1 = proxies[1];
    const reviewsV2 = proxies[2];
    assert.equal(proxyClassKey(reviewsV1), proxyClassKey(reviewsV2), 'nothing tells the two reviews versions apart');
    const bySource = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings-from-v2}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {version: v2}}]
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings}}]
`);
    const withRule = [...resources, ...bySource];
    const v1 = { ...reviewsV1, config: { resources: withRule } };
    const v2 = { ...reviewsV2, config: { resources: withRule } };
    assert.notEqual(proxyClassKey(v1), proxyClassKey(v2), 'the rule applies to one of them only');
    const shared = compileSharedOutbound(v2, proxyClassKey(v2)!);
    assert.equal(JSON.stringify(compileProxyConfig(v2, shared)), JSON.stringify(compileProxyConfig(v2)));
  });
});
