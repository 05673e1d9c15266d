/**
 * SNW1021: a Gateway server's credentialName names a Secret that exists, but not in the
 * namespace of the gateway proxies that serve it. Istio's gateways read credentialName from
 * their own namespace only (the gateway workload's, not the Gateway resource's: SDS serves
 * `kubernetes://<name>` from the proxy's namespace), so such a server is left out, and the
 * Secret in the other namespace is the usual cause: it was created beside the Gateway or the
 * app (`kubectl create secret tls ... -n default`) while the gateway runs in istio-system.
 *
 * The gateway proxies are the Workloads its selector matches, and the gateways `sinew up`
 * runs as Istio installs them, in istio-system: istio-ingressgateway (`istio:
 * ingressgateway`) and istio-egressgateway (`istio: egressgateway`). A Gateway that selects
 * none of them is left alone (SNW1003's business is references, not placement).
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { FieldPath } from '../../core/path.js';
import { selectorMatches } from '../../semantics/labels.js';
import { finding, ofKind, type Analyzer, type Gateway, type Workload } from './common.js';

/** The gateways Istio's install (and `sinew up`) runs, with their pods' labels. */
const INSTALLED_GATEWAYS: readonly { namespace: string; name: string; labels: Record<string, string> }[] = [
  { namespace: 'istio-system', name: 'istio-ingressgateway', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' } },
  { namespace: 'istio-system', name: 'istio-egressgateway', labels: { istio: 'egressgateway', app: 'istio-egressgateway' } },
];

export const analyzeGatewayCredentials: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const gateways = ofKind<Gateway>(resources, 'Gateway').filter((g) => g.group === 'networking.istio.io');
  if (!gateways.some((g) => (g.spec.servers ?? []).some((s) => s.tls?.credentialName || s.tls?.credentialNames?.length))) return out;
  const secretNamespaces = new Map<string, string[]>();
  for (const s of resources) {
    if (s.kind !== 'Secret' || s.group !== '') continue;
    const list = secretNamespaces.get(s.metadata.name) ?? [];
    list.push(s.metadata.namespace);
    secretNamespaces.set(s.metadata.name, list);
  }
  const workloads = [
    ...INSTALLED_GATEWAYS,
    ...ofKind<Workload>(resources, 'Workload').map((w) => ({ namespace: w.metadata.namespace, name: w.metadata.name, labels: w.metadata.labels ?? {} })),
  ];
  for (const gateway of gateways) {
    // Istio's gateway selector matches workloads in every namespace (PILOT_SCOPE_GATEWAY_TO_NAMESPACE off).
    const served = workloads.filter((w) => Object.keys(gateway.spec.selector ?? {}).length > 0 && selectorMatches(gateway.spec.selector, w.labels));
    if (served.length === 0) continue;
    const proxyNamespaces = [...new Set(served.map((w) => w.namespace))].sort();
    for (const [i, server] of (gateway.spec.servers ?? []).entries()) {
      const names: { name: string; path: FieldPath }[] = [];
      if (server.tls?.credentialName) names.push({ name: server.tls.credentialName, path: ['spec', 'servers', i, 'tls', 'credentialName'] });
      for (const [j, name] of (server.tls?.credentialNames ?? []).entries()) names.push({ name, path: ['spec', 'servers', i, 'tls', 'credentialNames', j] });
      for (const { name, path } of names) {
        const found = secretNamespaces.get(name) ?? [];
        const missingIn = proxyNamespaces.filter((ns) => !found.includes(ns));
        const elsewhere = found.filter((ns) => !proxyNamespaces.includes(ns));
        if (missingIn.length === 0 || elsewhere.length === 0) continue;
        const proxies = served.filter((w) => missingIn.includes(w.namespace)).map((w) => `${w.namespace}/${w.name}`).join(', ');
        out.push(
          finding(
            gateway,
            'SNW1021',
            path,
            `Secret ${name} is in ${elsewhere.join(', ')}, but the gateway proxies serving this Gateway (${proxies}) read credentials from their own namespace, ${missingIn.join(', ')}: this server is not served there. Create the Secret in ${missingIn.join(', ')} (sinew create secret tls ${name} -n ${missingIn[0]} ...)`,
          ),
        );
      }
    }
  }
  return out;
};
