/**
 * What Sinew declares to the conformance suite: the profiles it runs, the features it supports
 * (a test needing any other is skipped, as the suite skips it), and the tests skipped although
 * their features are declared, each with the reason.
 */
import type { ConformanceTest, Declaration, Suite } from './suite.js';

/** The profiles the report covers. */
export const PROFILES = ['GATEWAY-HTTP', 'GATEWAY-TLS', 'MESH-HTTP'];

/**
 * Features not declared, with why: TLS listeners that terminate (TLSRoute passes TLS through)
 * and client certificates to backends are not served yet (HTTPS listeners, their client
 * certificate validation, and TLS to backends by BackendTLSPolicy are); ListenerSet is not
 * read; the rest are not implemented.
 */
export const NOT_DECLARED: Record<string, string> = {
  GatewayBackendClientCertificate: 'gateways present no client certificate to backends yet',
  GatewayHTTPSListenerDetectMisdirectedRequests: 'a request whose Host is not its SNI name is not answered 421 yet',
  TLSRouteModeTerminate: 'TLS listeners pass TLS through; terminating it for TLSRoutes is not served yet',
  TLSRouteModeMixed: 'TLS listeners pass TLS through; terminating it for TLSRoutes is not served yet',
  ListenerSet: 'ListenerSet is not read',
  MeshClusterIPMatching: 'workloads have no cluster IPs in the embedded mesh',
};

/**
 * The TLS calls the runner makes: requests to an HTTPS listener, trusting the suite's
 * certificate; BackendTLSPolicy status; TLSRoutes' status, connections through a TLS Passthrough
 * listener (to the TLS and TCP echo backends) and their rejection.
 */
const TLS_CALLS = new Set([
  'kubernetes.GetTLSSecret',
  'tls.MakeTLSRequestAndExpectEventuallyConsistentResponse',
  'tls.MakeTLSRequestAndExpectEventuallyConsistentFailureResponse',
  'kubernetes.BackendTLSPolicyMustHaveCondition',
  'kubernetes.BackendTLSPolicyMustHaveLatestConditions',
  'kubernetes.GatewayAndTLSRoutesMustBeAccepted',
  'kubernetes.TLSRouteMustHaveCondition',
  'kubernetes.TLSRouteMustHaveResolvedRefsConditionsTrue',
  'kubernetes.TLSRouteMustHaveNoAcceptedParents',
  'tls.MakeTLSConnectionAndExpectEventuallyConnectionRejection',
]);
/**
 * Why a test whose features are declared is skipped: it needs TLS the gateway does not serve
 * yet (client certificates, TLS backends).
 */
function tlsDependence(test: ConformanceTest): string | undefined {
  const other = test.steps.find((s) => (s.call?.startsWith('tls.') || s.call?.includes('TLS')) && !TLS_CALLS.has(s.call));
  if (other) return `${other.call}: client certificates and TLS to backends are not served yet`;
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
