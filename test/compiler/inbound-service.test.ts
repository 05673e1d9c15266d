/**
 * Regression: the destination reporter's `destination_service` was the Host header's short
 * name ("ratings") instead of the service FQDN. Istio's inbound cluster carries the services
 * that select the workload (`istio.services` metadata) and its stats filter reports the first;
 * Sinew's inbound cluster carries `service`, which the proxy publishes as the request's
 * destination service.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/resources/meta.js';
import { bookinfo, compile, parse, workload } from './support/mesh.js';

const inboundPort = (listen: number, app: number, containerPort = 9080) => ({ containerPort, listen: { host: '127.0.0.1', port: listen }, app: { host: '127.0.0.1', port: app } });

describe('inbound cluster service (destination_service at the destination reporter)', () => {
  test('names the Service that selects the workload on that port, by FQDN', () => {
    const { resources, instances } = bookinfo();
    // ratings-v1 is published at 20005 (see support/mesh.ts).
    const config = compile(resources, instances, { workload: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, ports: { outbound: 15001, inbound: [inboundPort(20005, 30005)] } });
    const cluster = config.clusters.find((c) => c.name === 'inbound|9080||');
    assert.deepEqual(cluster?.service, { host: 'ratings.default.svc.cluster.local', namespace: 'default', name: 'ratings', port: 9080 });
  });

  test('the service of the replica being compiled, not of another workload on the same port number', () => {
    const { resources, instances } = bookinfo();
    // reviews-v2 is published at 20003; details-v1 at 20001 serves the same containerPort 9080.
    const config = compile(resources, instances, { workload: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, ports: { inbound: [inboundPort(20003, 30003)] } });
    assert.equal(config.clusters.find((c) => c.name === 'inbound|9080||')?.service?.host, 'reviews.default.svc.cluster.local');
  });

  test('a TCP port gets its service too (istio_tcp_* at the destination reporter)', () => {
    const rs = parse(`
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  selector: {app: db}
  ports: [{name: tcp-db, port: 5432, targetPort: 5432}]
`);
    const all: Resource[] = [...rs, workload('db', { namespace: 'data', labels: { app: 'db' }, ports: [{ name: 'db', containerPort: 5432 }] })];
    const config = compile(all, new Map([['data/db', [{ name: 'db-0', address: '127.0.0.1', ports: { 5432: 25432 } }]]]), {
      workload: 'db',
      namespace: 'data',
      labels: { app: 'db' },
      ports: { inbound: [inboundPort(25432, 35432, 5432)] },
    });
    const cluster = config.clusters.find((c) => c.name === 'inbound|5432||');
    assert.equal(cluster?.protocol, 'tcp');
    assert.deepEqual(cluster?.service, { host: 'db.data.svc.cluster.local', namespace: 'data', name: 'db', port: 5432 });
  });

  test('no Service selects the workload: no service on the cluster (the proxy falls back to the Host header)', () => {
    const all = [workload('lonely', { labels: { app: 'lonely' } })];
    const config = compile(all, new Map([['default/lonely', [{ name: 'lonely-0', address: '127.0.0.1', ports: { 9080: 21000 } }]]]), {
      workload: 'lonely',
      labels: { app: 'lonely' },
      ports: { inbound: [inboundPort(21000, 31000)] },
    });
    const cluster = config.clusters.find((c) => c.name === 'inbound|9080||');
    assert.ok(cluster);
    assert.equal(cluster.service, undefined);
  });

  test('two Services select the workload on one port: the first by hostname, on every compile', () => {
    const rs = parse(`
apiVersion: v1
kind: Service
metadata: {name: ratings-canary, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
`);
    const { resources, instances } = bookinfo();
    const all = [...rs, ...resources];
    const config = compile(all, instances, { workload: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, ports: { inbound: [inboundPort(20005, 30005)] } });
    assert.equal(config.clusters.find((c) => c.name === 'inbound|9080||')?.service?.host, 'ratings-canary.default.svc.cluster.local');
    const again = compile([...resources, ...rs], instances, { workload: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, ports: { inbound: [inboundPort(20005, 30005)] } });
    assert.deepEqual(again.clusters.find((c) => c.name === 'inbound|9080||')?.service, config.clusters.find((c) => c.name === 'inbound|9080||')?.service);
  });
});
