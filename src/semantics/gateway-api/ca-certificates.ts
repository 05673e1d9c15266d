/**
 * CA certificate references of the Gateway API (GEP-1897 BackendTLSPolicy `caCertificateRefs`,
 * GEP-91 Gateway `tls.frontend` validation): ConfigMaps whose `ca.crt` holds PEM certificates.
 * One resolution for both; each kind words the problems with its own reasons.
 */
import type { Resource } from '../../api/resources/meta.js';
import { CA_CERTIFICATE_KEY, type ConfigMapSpec } from '../../api/resources/config-map.js';
import { parseCertificates } from '../credentials.js';

export interface CaCertificateRef {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface CaRefProblem {
  /** `kind`: not a core ConfigMap; `missing`: no such ConfigMap, or no PEM `ca.crt`; `notPermitted`: another namespace's, without a ReferenceGrant. */
  problem: 'kind' | 'missing' | 'notPermitted';
  message: string;
}

/** The CA bundle of the refs that resolve (PEM, undefined when none does), and the problems of the others. */
export function resolveCaCertificateRefs(
  refs: readonly CaCertificateRef[],
  namespace: string,
  configMaps: ReadonlyMap<string, Resource>,
  permitted: (ref: { namespace: string; name: string }) => boolean = () => true,
): { caPem?: string; problems: CaRefProblem[] } {
  const pems: string[] = [];
  const problems: CaRefProblem[] = [];
  for (const ref of refs) {
    if ((ref.group ?? '') !== '' || ref.kind !== 'ConfigMap') {
      problems.push({ problem: 'kind', message: `caCertificateRef ${ref.group ? `${ref.group}/` : ''}${ref.kind} ${ref.name}: only core ConfigMaps hold CA certificates` });
      continue;
    }
    const ns = ref.namespace ?? namespace;
    if (ns !== namespace && !permitted({ namespace: ns, name: ref.name })) {
      problems.push({ problem: 'notPermitted', message: `no ReferenceGrant in ${ns} lets this use ConfigMap ${ref.name}` });
      continue;
    }
    const cm = configMaps.get(`${ns}/${ref.name}`) as Resource<ConfigMapSpec> | undefined;
    if (!cm) {
      problems.push({ problem: 'missing', message: `ConfigMap ${ns}/${ref.name} not found` });
      continue;
    }
    const pem = cm.spec.data?.[CA_CERTIFICATE_KEY];
    try {
      if (pem === undefined) throw new Error(`it has no ${CA_CERTIFICATE_KEY}`);
      parseCertificates(pem);
      pems.push(pem.trim());
    } catch (err) {
      problems.push({ problem: 'missing', message: `ConfigMap ${ns}/${ref.name}: ${(err as Error).message}` });
    }
  }
  return { ...(pems.length ? { caPem: pems.join('\n') + '\n' } : {}), problems };
}

/** The ConfigMaps of a snapshot by `namespace/name`. */
export function configMapsOf(resources: readonly Resource[]): Map<string, Resource> {
  return new Map(resources.filter((r) => r.kind === 'ConfigMap' && r.group === '').map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]));
}
