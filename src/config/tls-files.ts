/**
 * Certificates named by file path (a Gateway server's `serverCertificate`, `privateKey`,
 * `caCertificates`; a DestinationRule's `clientCertificate`, `privateKey`, `caCertificates`)
 * are read by the proxy that uses them, on its own machine. Where the proxies run on the
 * machine that applies the config (the embedded mesh), a path that cannot be read there is
 * worth saying at apply time: the proxy would leave that server out (or keep that cluster
 * warming) until the file appears. SNW1020, a warning: the file may be written later, and the
 * proxy takes it when it is.
 */
import { accessSync, constants } from 'node:fs';
import type { Diagnostic } from '../api/diagnostics.js';
import type { DestinationRuleSpec, GatewaySpec, Resource } from '../api/resources/index.js';
import { formatPath, type FieldPath } from '../core/path.js';
import { trafficPolicies } from './traffic-policies.js';

/** Why `path` cannot be read by this process, or undefined when it can. */
export function unreadableReason(path: string): string | undefined {
  try {
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
  }
}

/** Every certificate path the resources name (without a credentialName), with its field. */
function* namedFiles(r: Resource): Generator<{ path: FieldPath; file: string }> {
  const fields = (tls: Record<string, unknown> | undefined, at: FieldPath, names: readonly string[]) =>
    tls && !tls.credentialName ? names.filter((n) => typeof tls[n] === 'string' && tls[n] !== '').map((n) => ({ path: [...at, n], file: tls[n] as string })) : [];
  if (r.kind === 'Gateway' && r.group === 'networking.istio.io') {
    for (const [i, server] of ((r.spec as GatewaySpec).servers ?? []).entries()) {
      const mode = server.tls?.mode;
      if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH' || mode === 'ISTIO_MUTUAL') continue;
      yield* fields(server.tls as Record<string, unknown> | undefined, ['spec', 'servers', i, 'tls'], ['serverCertificate', 'privateKey', 'caCertificates']);
    }
  }
  if (r.kind === 'DestinationRule') {
    for (const { policy, path } of trafficPolicies(r.spec as DestinationRuleSpec)) {
      const tls = policy.tls as Record<string, unknown> | undefined;
      if (tls?.mode !== 'SIMPLE' && tls?.mode !== 'MUTUAL') continue;
      yield* fields(tls, [...path, 'tls'], ['clientCertificate', 'privateKey', 'caCertificates']);
    }
  }
}

/** SNW1020 for every certificate file the resources name that this machine cannot read. */
export function unreadableTlsFiles(resources: readonly Resource[], reasonFor: (file: string) => string | undefined = unreadableReason): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const r of resources) {
    for (const { path, file } of namedFiles(r)) {
      const reason = reasonFor(file);
      if (reason === undefined) continue;
      out.push({
        level: 'warning',
        code: 'SNW1020',
        message: `${file} cannot be read on this machine (${reason}): the proxy that uses it ${r.kind === 'Gateway' ? 'does not serve this server' : 'keeps the clusters of this rule waiting (503 UH)'} until it can read it`,
        resource: { kind: r.kind, namespace: r.metadata.namespace || undefined, name: r.metadata.name },
        ...(r.source ? { source: r.source } : {}),
        path: formatPath(path),
      });
    }
  }
  return out;
}
