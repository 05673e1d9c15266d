/**
 * What Sinew declares to the conformance suite: the profiles it runs, the features it supports
 * (a test needing any other is skipped, as the suite skips it), and the tests skipped although
 * their features are declared, each with the reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir, type ConformanceTest, type Declaration, type Suite } from './suite.js';

/** The profiles the report covers. */
export const PROFILES = ['GATEWAY-HTTP', 'GATEWAY-TLS', 'MESH-HTTP'];

/**
 * Features not declared, with why: TLS at the gateway and to backends needs the TLS transport
 * sockets (built separately); ListenerSet is not read; the rest are not implemented.
 */
export const NOT_DECLARED: Record<string, string> = {
  BackendTLSPolicy: 'needs TLS transport sockets',
  BackendTLSPolicySANValidation: 'needs TLS transport sockets',
  GatewayBackendClientCertificate: 'needs TLS transport sockets',
  GatewayFrontendClientCertificateValidation: 'needs TLS transport sockets',
  GatewayFrontendClientCertificateValidationInsecureFallback: 'needs TLS transport sockets',
  GatewayHTTPSListenerDetectMisdirectedRequests: 'needs TLS transport sockets',
  TLSRoute: 'needs TLS transport sockets',
  TLSRouteModeTerminate: 'needs TLS transport sockets',
  TLSRouteModeMixed: 'needs TLS transport sockets',
  ListenerSet: 'ListenerSet is not read',
  MeshClusterIPMatching: 'workloads have no cluster IPs in the embedded mesh',
};

/** Why a test whose features are declared is skipped: it needs a TLS listener or backend. */
function tlsDependence(test: ConformanceTest): string | undefined {
  if (test.steps.some((s) => s.call?.startsWith('tls.') || s.call === 'kubernetes.GetTLSSecret')) return 'makes TLS connections: needs TLS transport sockets';
  const text = test.manifests.map((m) => readFileSync(join(fixturesDir, m), 'utf8')).join('\n');
  if (/certificateRefs|protocol: HTTPS|protocol: TLS/.test(text)) return 'its Gateway terminates TLS: needs TLS transport sockets';
  if (/same-namespace-with-https-listener/.test(text)) return 'attaches to the HTTPS Gateway of the base: needs TLS transport sockets';
  return undefined;
}

export function sinewDeclaration(suite: Suite): Declaration {
  const all = new Set(PROFILES.flatMap((p) => [...suite.profiles[p].core, ...suite.profiles[p].extended]));
  const supported = new Set([...all].filter((f) => !(f in NOT_DECLARED)));
  const skipTests = new Map<string, string>();
  for (const test of suite.tests) {
    const why = tlsDependence(test);
    if (why) skipTests.set(test.shortName, why);
  }
  return { supported, skipTests };
}
