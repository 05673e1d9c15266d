/**
 * The credentials a proxy's clusters originate TLS with (DestinationRule `tls` SIMPLE or
 * MUTUAL with `credentialName`), as Istio's SDS serves `kubernetes://<name>` to the proxy
 * that uses it: the Secret is looked up in the proxy's own namespace (Istio: "the secret must
 * exist in the namespace of the proxy using the certificates"), and only a proxy whose
 * clusters name it receives it.
 *
 * The cluster (policy.ts `upstreamTls`) names `<credentialName>` as its client certificate
 * (MUTUAL) and `<credentialName>-cacert` as the roots it verifies the server against. The
 * roots are the Secret's own `ca.crt` / `cacert`, else the `<credentialName>-cacert` Secret's
 * (Istio's two layouts). A Secret that is missing or lacks a part sends nothing for it: the
 * cluster then waits for it (503 UH, `cluster_warming`) rather than connect unverified.
 */
import type { Cluster, Secret } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { SecretSpec } from '../api/resources/secret.js';
import { credentialOf } from '../semantics/credentials.js';
import type { CompileContext } from './context.js';

const CA_SUFFIX = '-cacert';

/** The Secrets the clusters' TLS origination names, from the proxy's namespace; those in `present` are left out. */
export function clientCredentialSecrets(ctx: CompileContext, clusters: readonly Cluster[], present: readonly Secret[]): Secret[] {
  const certificates = new Set<string>();
  const roots = new Set<string>();
  for (const c of clusters) {
    const t = c.tls;
    if (!t || t.mode === 'ISTIO_MUTUAL') continue;
    if (t.certificate) certificates.add(t.certificate);
    if (t.validationContext?.endsWith(CA_SUFFIX)) roots.add(t.validationContext);
  }
  if (certificates.size === 0 && roots.size === 0) return [];
  const namespace = ctx.node.namespace;
  const byName = new Map<string, Resource<SecretSpec>>();
  for (const r of ctx.resources) {
    if (r.kind === 'Secret' && r.group === '' && r.metadata.namespace === namespace) byName.set(r.metadata.name, r as Resource<SecretSpec>);
  }
  const credential = (name: string) => {
    const secret = byName.get(name);
    return secret ? credentialOf(secret.spec ?? {}) : {};
  };
  const taken = new Set(present.map((s) => s.name));
  const out: Secret[] = [];
  for (const name of [...certificates].sort()) {
    const c = credential(name);
    if (taken.has(name) || !c.certificateChainPem || !c.privateKeyPem) continue;
    out.push({ name, certificateChainPem: c.certificateChainPem, privateKeyPem: c.privateKeyPem });
  }
  for (const name of [...roots].sort()) {
    const ca = credential(name.slice(0, -CA_SUFFIX.length)).caPem ?? credential(name).caPem;
    if (taken.has(name) || !ca) continue;
    out.push({ name, trustedCaPem: ca });
  }
  return out;
}
