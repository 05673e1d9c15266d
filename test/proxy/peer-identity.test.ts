/**
 * The mesh-key check of a peer's exchange headers (src/proxy/peer-identity.ts) remembers its
 * verdicts, the last one first. A remembered verdict must only ever answer for exactly the
 * headers it was given: a forged signature beside a genuine peer's metadata, sent between the
 * genuine peer's requests, must never inherit that peer's verdict, nor spoil it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import { NO_PEER_IDENTITY, PEER_SIGNATURE_HEADER, peerIdentityFor } from '../../src/proxy/peer-identity.js';
import { peerMetadataHeaders } from '../../src/telemetry/peer-metadata.js';
import { proxyConfig, withMeshKey } from './support/config.js';

const node = (workload: string): ProxyNode => ({ id: `sidecar~${workload}-0.default`, mode: 'sidecar', workload, namespace: 'default', labels: { app: workload, version: 'v1' } });
const config = withMeshKey(proxyConfig({ listeners: [] }));

/** A sidecar's signed exchange headers, as it sends them upstream. */
function signedBy(workload: string): Record<string, string> {
  const local = peerMetadataHeaders(node(workload));
  return { ...local, ...peerIdentityFor(config, local, NO_PEER_IDENTITY).proofHeaders };
}

describe('peer identity by the mesh key', () => {
  test('remembered verdicts answer only for the exact headers: a forgery between genuine requests is refused each time', () => {
    const receiver = peerIdentityFor(config, peerMetadataHeaders(node('reviews')), NO_PEER_IDENTITY);
    const genuine = signedBy('productpage');
    const forged = { ...genuine, [PEER_SIGNATURE_HEADER]: 'A'.repeat(genuine[PEER_SIGNATURE_HEADER]!.length) };
    const other = signedBy('ratings');
    for (let round = 0; round < 3; round++) {
      assert.equal(receiver.verify(genuine)?.workload, 'productpage', `round ${round}: the genuine peer`);
      assert.equal(receiver.verify(genuine)?.workload, 'productpage', `round ${round}: the genuine peer again`);
      assert.equal(receiver.verify(forged), undefined, `round ${round}: its metadata with a forged signature`);
      assert.equal(receiver.verify(other)?.workload, 'ratings', `round ${round}: another genuine peer`);
      assert.equal(receiver.verify({ ...other, [PEER_SIGNATURE_HEADER]: genuine[PEER_SIGNATURE_HEADER]! }), undefined, `round ${round}: another peer's metadata with the first one's signature`);
    }
  });

  test('a proxy with another key proves nothing, even for headers it saw before', () => {
    const genuine = signedBy('productpage');
    const stranger = peerIdentityFor(withMeshKey(proxyConfig({ listeners: [] }), Buffer.alloc(32, 7).toString('base64')), peerMetadataHeaders(node('reviews')), NO_PEER_IDENTITY);
    assert.equal(stranger.verify(genuine), undefined);
    assert.equal(stranger.verify(genuine), undefined);
  });
});
