/**
 * The credentials a proxy originates TLS with (DestinationRule `tls` SIMPLE or MUTUAL with
 * `credentialName`), as Istio's SDS serves `kubernetes://<name>` to the proxy that uses it:
 * the Secret is looked up in the proxy's own namespace (Istio: "the secret must exist in the
 * namespace of the proxy using the certificates"), and only a proxy for which such a rule is
 * in force (the DestinationRule the compiler picks for one of the services it sees) receives it.
 *
 * The clusters (policy.ts `upstreamTls`) name `<credentialName>` as their client certificate
 * (MUTUAL) and `<credentialName>-cacert` as the roots they verify the server against. The
 * roots are the Secret's own `ca.crt` / `cacert`, else the `<credentialName>-cacert` Secret's
 * (Istio's two layouts). A Secret that is missing or lacks a part sends nothing for it: the
 * cluster then waits for it (503 UH, `cluster_warming`) rather than connect unverified.
 *
 * Without a credentialName, `clientCertificate`, `privateKey` and `caCertificates` name files
 * on the proxy's machine (Istio's older egress tasks mount them into the gateway): the proxy
 * gets their paths, as Istio's `file-cert:` and `file-root:` SDS names, and reads them itself.
 */
import { fileCertificateSecretName, fileRootSecretName, type Secret } from '../api/proxy-config.js';
import type { ClientTLSSettings, DestinationRuleSpec, TrafficPolicy } from '../api/resources/destination-rule.js';
import type { Resource } from '../api/resources/meta.js';
import type { SecretSpec } from '../api/resources/secret.js';
import { credentialOf } from '../semantics/credentials.js';
import type { CompileContext } from './context.js';

const CA_SUFFIX = '-cacert';

/** Every `tls` of a rule: its policy's, its port-level settings', its subsets' (and theirs). */
function tlsSettings(spec: Pick<DestinationRuleSpec, 'trafficPolicy' | 'subsets'>): ClientTLSSettings[] {
  const out: ClientTLSSettings[] = [];
  const policy = (p: TrafficPolicy | undefined) => {
    if (p?.tls) out.push(p.tls);
    for (const port of p?.portLevelSettings ?? []) if (port.tls) out.push(port.tls);
  };
  policy(spec.trafficPolicy);
  for (const subset of spec.subsets ?? []) policy(subset.trafficPolicy);
  return out;
}

const originatesFromSecret = (tls: ClientTLSSettings) => (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && Boolean(tls.credentialName);
const originatesFromFiles = (tls: ClientTLSSettings) =>
  (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && !tls.credentialName && Boolean(tls.caCertificates || (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey));
const originates = (tls: ClientTLSSettings) => originatesFromSecret(tls) || originatesFromFiles(tls);

/**
 * The secrets a `tls` without credentialName names by file (Istio's `file-cert:<chain>~<key>`
 * for MUTUAL's clientCertificate and privateKey, `file-root:<ca>` for caCertificates). The
 * proxy reads the files itself: only the paths are pushed.
 */
export function fileCredentialNames(tls: ClientTLSSettings): { certificate?: string; validationContext?: string } {
  const out: { certificate?: string; validationContext?: string } = {};
  if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) out.certificate = fileCertificateSecretName(tls.clientCertificate, tls.privateKey);
  if (tls.caCertificates) out.validationContext = fileRootSecretName(tls.caCertificates);
  return out;
}

/**
 * The resources a proxy's credentials are made from: Secrets, and DestinationRules that
 * originate TLS with a credentialName. While they are the same objects, so are the credentials
 * (the control plane keeps a sidecar's own part on that).
 */
export function credentialSources(resources: readonly Resource[]): Resource[] {
  return resources.filter((r) => r.kind === 'Secret' || (r.kind === 'DestinationRule' && tlsSettings((r.spec ?? {}) as DestinationRuleSpec).some(originates)));
}

/** The credentials and roots the proxy's TLS origination names, from its namespace; names in `present` are left out. */
export function clientCredentialSecrets(ctx: CompileContext, present: readonly Secret[]): Secret[] {
  // Most meshes name none: skip the walk over the services.
  if (!ctx.resources.some((r) => r.kind === 'DestinationRule' && tlsSettings((r.spec ?? {}) as DestinationRuleSpec).some(originates))) return [];
  const certificates = new Set<string>();
  const roots = new Set<string>();
  const files = new Map<string, Secret>();
  for (const service of ctx.visibleServices()) {
    const rule = ctx.destinationRule(service);
    if (!rule) continue;
    for (const tls of tlsSettings(rule)) {
      if (originatesFromFiles(tls)) {
        const names = fileCredentialNames(tls);
        if (names.certificate) files.set(names.certificate, { name: names.certificate, files: { certificateChain: tls.clientCertificate!, privateKey: tls.privateKey! } });
        if (names.validationContext) files.set(names.validationContext, { name: names.validationContext, files: { trustedCa: tls.caCertificates! } });
        continue;
      }
      if (!originatesFromSecret(tls)) continue;
      roots.add(`${tls.credentialName}${CA_SUFFIX}`);
      if (tls.mode === 'MUTUAL') certificates.add(tls.credentialName!);
    }
  }
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
  for (const name of [...files.keys()].sort()) if (!taken.has(name)) out.push(files.get(name)!);
  return out;
}
