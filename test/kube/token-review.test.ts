/**
 * Proxies in pods prove who they are with their projected service-account token, reviewed by
 * a real kube-apiserver v1.20 (TokenReview): a proxy with a token of its own service account
 * gets its config; a token of another service account, of another pod, of another audience,
 * an expired one, a garbage one, or none, is refused, with the reason logged by the control
 * plane and told to the proxy. Reviews are cached briefly.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { PushClient } from '../../src/xds/client.js';
import type { CloseInfo } from '../../src/xds/connection.js';
import { XdsErrorCode } from '../../src/xds/protocol.js';
import { startKubeControlPlane, type KubeControlPlane } from '../../src/cli/kube-controlplane.js';
import type { KubeClient } from '../../src/kube/api.js';
import { TokenReviewer } from '../../src/kube/token-review.js';
import { clusterSkip, startCluster, type TestCluster } from './support/cluster.js';
import { clientFor, createPod, createServiceAccount, expiredServiceAccountToken, installCrds, requestServiceAccountToken, until } from './support/objects.js';

const NS = 'default';
const POD_A = 'web-v1-7d9c8b5f4-aaaaa';
const POD_B = 'web-v1-7d9c8b5f4-bbbbb';
const nodeOf = (pod: string, serviceAccount = 'web'): ProxyNode => ({ id: `sidecar~${pod}.${NS}`, mode: 'sidecar', workload: 'web-v1', namespace: NS, labels: { app: 'web', version: 'v1' }, serviceAccount });

describe('proxies authenticated by their service-account token (TokenReview on a real API server)', { skip: clusterSkip }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  let kube: KubeControlPlane | undefined;
  let webUid: string;
  const logLines: string[] = [];

  before(async () => {
    cluster = await startCluster();
    client = clientFor(cluster);
    await installCrds(client);
    webUid = await createServiceAccount(client, NS, 'web');
    await createServiceAccount(client, NS, 'other');
    await client.request('POST', `/api/v1/namespaces/${NS}/services`, { body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] } } });
    await createPod(client, NS, { name: POD_A, workload: 'web-v1', labels: { app: 'web', version: 'v1' }, ip: '10.244.0.21', serviceAccount: 'web', port: 8080 });
    await createPod(client, NS, { name: POD_B, workload: 'web-v1', labels: { app: 'web', version: 'v1' }, ip: '10.244.0.22', serviceAccount: 'web', port: 8080 });
    kube = await startKubeControlPlane({ client, apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 20, logger: createLogger({ level: 'warn', write: (line) => logLines.push(line) }) });
  });

  after(async () => {
    await kube?.close();
    await cluster?.stop();
  });

  /** Connects a proxy presenting `credential`: its first config, or how the control plane closed it. */
  async function connect(node: ProxyNode, credential: string | undefined): Promise<{ config?: ProxyConfig; refused?: CloseInfo }> {
    const [host, port] = kube!.controlPlane.addresses.push.split(':');
    let config: ProxyConfig | undefined;
    let refused: CloseInfo | undefined;
    const proxy = new PushClient({ host: host!, port: Number(port), node, credential, apply: (c) => void (config = c), backoff: { initialMs: 5_000, maxMs: 5_000 } });
    proxy.on('disconnected', (info: CloseInfo) => (refused ??= info));
    proxy.start();
    try {
      await until(() => config !== undefined || refused !== undefined, 15_000, `${node.id} configured or refused`);
      return { config, refused };
    } finally {
      await proxy.close();
    }
  }

  async function assertRefused(node: ProxyNode, credential: string | undefined, reason: RegExp): Promise<void> {
    const before = logLines.length;
    const { config, refused } = await connect(node, credential);
    assert.equal(config, undefined, 'no config for a refused proxy');
    assert.equal(refused?.code, XdsErrorCode.Unauthenticated);
    assert.match(refused!.reason, reason, 'the proxy is told why');
    const logged = logLines.slice(before).find((l) => l.includes('refused a proxy without a valid credential'));
    assert.ok(logged, 'the control plane logs the refusal');
    assert.ok(logged.includes(node.id), logged);
    assert.match(logged, reason);
  }

  it('gives its config to a proxy presenting a token of its own service account, bound to its own pod', async () => {
    const token = await requestServiceAccountToken(client, NS, 'web', { pod: POD_A });
    const { config, refused } = await connect(nodeOf(POD_A), token);
    assert.equal(refused, undefined);
    assert.ok(config!.listeners.length > 0, 'a config with listeners');
  });

  it('accepts a token of the service account that is bound to no pod', async () => {
    const token = await requestServiceAccountToken(client, NS, 'web');
    const { config } = await connect(nodeOf(POD_B), token);
    assert.ok(config);
  });

  it('refuses a token of another service account than the one the proxy names', async () => {
    const token = await requestServiceAccountToken(client, NS, 'other');
    await assertRefused(nodeOf(POD_A), token, /belongs to system:serviceaccount:default:other, but the proxy names system:serviceaccount:default:web/);
  });

  it('refuses a token bound to another pod of the same service account', async () => {
    const bound = await requestServiceAccountToken(client, NS, 'web', { pod: POD_B });
    await assertRefused(nodeOf(POD_A), bound, /bound to pod default\/web-v1-7d9c8b5f4-bbbbb, but the proxy is sidecar~web-v1-7d9c8b5f4-aaaaa\.default/);
  });

  it('refuses a token for another audience than istio-ca', async () => {
    const token = await requestServiceAccountToken(client, NS, 'web', { audience: 'https://kubernetes.default.svc.cluster.local' });
    await assertRefused(nodeOf(POD_A), token, /the API server did not accept the token: .*invalid for the target audiences \[\\?"istio-ca\\?"\]/);
  });

  it('refuses an expired token, with what the API server said', async () => {
    const token = await expiredServiceAccountToken(cluster, NS, 'web', webUid);
    await assertRefused(nodeOf(POD_A), token, /the API server did not accept the token: .*expired/);
  });

  it('refuses a garbage token and a HELLO without one', async () => {
    await assertRefused(nodeOf(POD_A), 'not-a-token', /the API server did not accept the token/);
    await assertRefused(nodeOf(POD_A), undefined, /no credential: a proxy in a pod presents its service-account token for the audience istio-ca \(sinew proxy --token-file \/var\/run\/secrets\/tokens\/istio-token\)/);
  });

  it('still accepts a credential the control plane minted (an operator-started proxy)', async () => {
    const node = nodeOf(POD_A);
    const { config } = await connect(node, kube!.controlPlane.credentials.mintProxyCredential(node));
    assert.ok(config);
  });

  it('reviews a token once while its answer is cached, again after the cache time, and never past its expiry', async () => {
    const clock = new ManualClock(Date.now());
    const reviewer = new TokenReviewer({ client, clock, cacheTtlMs: 60_000 });
    const token = await requestServiceAccountToken(client, NS, 'web', { pod: POD_A });
    const [first, second] = await Promise.all([reviewer.review(token), reviewer.review(token)]);
    assert.equal(first.authenticated, true);
    assert.deepEqual(second, first);
    assert.equal(reviewer.reviews, 1, 'two reviews at once are sent once');
    clock.advance(59_000);
    await reviewer.review(token);
    assert.equal(reviewer.reviews, 1, 'answered from the cache');
    clock.advance(2_000);
    assert.equal((await reviewer.review(token)).authenticated, true);
    assert.equal(reviewer.reviews, 2, 'asked again after the cache time');
    // The token expires in an hour (requestServiceAccountToken): an answer cached a minute
    // before that is not used after it.
    clock.advance(3600_000 - 61_000 - 30_000);
    await reviewer.review(token);
    assert.equal(reviewer.reviews, 3);
    clock.advance(31_000);
    await reviewer.review(token);
    assert.equal(reviewer.reviews, 4, 'the cached answer did not outlive the token');
  });

  // Regression: the trace collector took only credentials the control plane minted, so a
  // proxy in a pod, which presents its service-account token, had every span export refused.
  it("the trace collector takes spans with a pod's service-account token, and refuses another audience's or a garbage one", async () => {
    const post = async (token: string) => {
      const res = await fetch(`http://${kube!.controlPlane.addresses.api}/v1/traces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ resourceSpans: [] }),
      });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await post(await requestServiceAccountToken(client, NS, 'web', { pod: POD_A })), 200);
    assert.equal(await post(await requestServiceAccountToken(client, NS, 'web', { audience: 'somewhere-else' })), 401);
    assert.equal(await post('not.a.token'), 401);
    // The queries stay the operator's: a proxy's token reads no traces.
    const res = await fetch(`http://${kube!.controlPlane.addresses.api}/api/v1/traces`, { headers: { authorization: `Bearer ${await requestServiceAccountToken(client, NS, 'web', { pod: POD_A })}` } });
    await res.arrayBuffer();
    assert.equal(res.status, 401);
  });
});
