/**
 * Status and leader election against a real kube-apiserver v1.20: two control-plane replicas
 * share a Lease; only the holder writes status; an invalid VirtualService that got in
 * (no webhook) gets `Accepted=False` with Sinew's errors, and `Accepted=True` once fixed; when
 * the leader stops, the other replica takes the Lease and writes what follows.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startKubeControlPlane, type KubeControlPlane } from '../../src/cli/kube-controlplane.js';
import type { KubeClient } from '../../src/kube/api.js';
import { clusterSkip, startCluster, type TestCluster } from './support/cluster.js';
import { applyObjects, clientFor, installCrds, until } from './support/objects.js';

const vs = (name: string, destination: Record<string, unknown>) => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'default' },
  spec: { hosts: [name], http: [{ route: [{ destination }] }] },
});

describe('status of refused resources, written by the Lease holder', { skip: clusterSkip }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  const replicas: KubeControlPlane[] = [];

  before(async () => {
    cluster = await startCluster();
    client = clientFor(cluster);
    await installCrds(client);
    await applyObjects(client, [vs('reviews', { hosts: 'reviews' })]);
    for (const identity of ['replica-a', 'replica-b']) {
      replicas.push(
        await startKubeControlPlane({
          kubeconfig: cluster.kubeconfig,
          apiPort: 0,
          pushPort: 0,
          monitoringPort: 0,
          collectTraces: false,
          leaderElection: { namespace: 'sinew-system', name: 'sinew-controlplane', identity, leaseDurationMs: 3_000, retryMs: 200 },
        }),
      );
    }
  });

  after(async () => {
    for (const r of replicas) await r.close();
    await cluster?.stop();
  });

  const statusOf = async (name: string) => (await client.get<any>(`/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices/${name}`)).status;
  const leaders = () => replicas.filter((r) => r.leader!.leading);

  it('exactly one replica holds the Lease', async () => {
    await until(() => leaders().length === 1, 10_000, 'a leader');
    const lease = await client.get<any>('/apis/coordination.k8s.io/v1/namespaces/sinew-system/leases/sinew-controlplane');
    assert.equal(lease.spec.holderIdentity, leaders()[0] === replicas[0] ? 'replica-a' : 'replica-b');
  });

  it('an invalid resource that got in gets Accepted=False with every error', async () => {
    await until(async () => (await statusOf('reviews'))?.conditions?.[0]?.status === 'False', 10_000, 'the refusal on status');
    const status = await statusOf('reviews');
    assert.equal(status.conditions[0].reason, 'Invalid');
    assert.match(status.conditions[0].message, /SNW0104/);
    assert.ok(status.validationMessages.some((m: any) => m.level === 'ERROR' && m.type.code === 'SNW0104'));
  });

  it('a fixed resource gets Accepted=True and no messages', async () => {
    await applyObjects(client, [vs('reviews', { host: 'reviews' })]);
    await until(async () => (await statusOf('reviews'))?.conditions?.[0]?.status === 'True', 10_000, 'the acceptance on status');
    assert.deepEqual((await statusOf('reviews')).validationMessages, []);
  });

  it('when the leader stops, the other replica takes over and writes status', async () => {
    const [leader] = leaders();
    const other = replicas.find((r) => r !== leader)!;
    await leader!.close();
    replicas.splice(replicas.indexOf(leader!), 1);
    await until(() => other.leader!.leading, 10_000, 'the other replica leading');
    await applyObjects(client, [vs('ratings', { hosts: 'ratings' })]);
    await until(async () => (await statusOf('ratings'))?.conditions?.[0]?.status === 'False', 10_000, 'the new leader writing status');
  });
});
