import type { CodeTable } from './types.js';

/**
 * SNW1xxx: cross-resource analysis (sinew analyze), in the spirit of istioctl analyze
 * (IST0101, IST0109, IST0113) and Kiali's validations (KIA11xx). Each check sees the whole
 * input, so it can catch what validating one resource at a time cannot. (SNW1011 and SNW1012
 * moved to the table of what is accepted but not enforced yet, ./not-enforced.ts: validation
 * reports them now, and analysis with it.)
 */
export const analysisCodes: CodeTable = {
  SNW1001: {
    level: 'error',
    name: 'ReferencedSubsetNotFound',
    description: 'A route names a subset that no DestinationRule for that host defines; requests to it fail with 503 (like istioctl IST0101). Add the subset or fix the name.',
  },
  SNW1002: {
    level: 'error',
    name: 'DestinationHostNotFound',
    description: 'A route sends traffic to a host that no Service or ServiceEntry in the input provides (like istioctl IST0101). Add the Service, or fix the host name.',
  },
  SNW1003: {
    level: 'error',
    name: 'ReferencedGatewayNotFound',
    description: 'A VirtualService is bound to a Gateway that does not exist in the input (like istioctl IST0101); its routes apply nowhere. Add the Gateway or fix the reference (`name` or `namespace/name`).',
  },
  SNW1004: {
    level: 'error',
    name: 'DuplicateSubsetName',
    description: 'The same subset name is defined twice for one host in one namespace; only one of them takes effect. Rename or remove one.',
  },
  SNW1005: {
    level: 'warning',
    name: 'MultipleDestinationRulesForHost',
    description: 'Two DestinationRules in one namespace apply to the same host; Istio merges them in an order that is easy to get wrong. Keep one DestinationRule per host.',
  },
  SNW1006: {
    level: 'warning',
    name: 'UnreachableRoute',
    description: 'An earlier HTTP route of the same VirtualService matches every request (a match block with only `uri: prefix: /`, or an empty one), so this route can never be taken. Move the catch-all last. (Routes after a rule with no match at all are reported by validation, SNW0224.)',
  },
  SNW1007: {
    level: 'warning',
    name: 'RouteWeightsNotHundred',
    description: 'The weights of a route with several destinations do not add up to 100; traffic is split in proportion, which is rarely what was meant. Make them sum to 100.',
  },
  SNW1008: {
    level: 'error',
    name: 'MTLSPolicyConflict',
    description: 'A DestinationRule sets a client TLS mode that the PeerAuthentication of the destination workloads rejects (STRICT vs DISABLE, DISABLE vs ISTIO_MUTUAL), like istioctl IST0113; connections will fail. Align the two.',
  },
  SNW1009: {
    level: 'warning',
    name: 'WorkloadWithoutService',
    description: 'No Service selects this Workload, so no other workload can reach it through the mesh. Add a Service whose selector matches its labels.',
  },
  SNW1010: {
    level: 'error',
    name: 'ConflictingMeshGatewayVirtualServiceHosts',
    description: 'Several VirtualServices bound to the mesh claim one host within the namespaces they are exported to (istioctl IST0109). Sidecars use the oldest (creationTimestamp, then name) and ignore the others for that host; at gateways VirtualServices merge and are not reported. Merge them into one VirtualService, or scope them apart with exportTo.',
  },
  SNW1013: {
    level: 'warning',
    name: 'UnexpandedServiceHost',
    description: 'A VirtualService (bound to the mesh) or DestinationRule names a host `<service>.<namespace>`, like `reviews.default`, where that Service exists. Kubernetes DNS resolves such a name for a client, but Istio expands only names without dots, so the rule is for the literal host `reviews.default` and never applies to the Service. Write the full name, `reviews.default.svc.cluster.local`.',
  },
  SNW1014: {
    level: 'warning',
    name: 'ServiceTargetPortNotDeclared',
    description:
      "A Service port's targetPort (a number, a port name, or the Service port when absent) is not among the ports of a Workload the Service selects. Kubernetes looks a name up among the container ports; a Workload replica is reachable only on the ports it declares, so it is not an endpoint of that Service port and requests to it never reach the replica. Declare the port in the Workload, or point targetPort at one it declares.",
  },
  SNW1015: {
    level: 'warning',
    name: 'AuthorizationNamespaceNotFound',
    description:
      'An AuthorizationPolicy names a source namespace (`from.source.namespaces`, `notNamespaces`, or a `source.namespace` condition) in which nothing of the mesh lives (Kiali KIA0101), so the rule can never match a caller from it. Fix the name, or remove the namespace.',
  },
  SNW1016: {
    level: 'warning',
    name: 'AuthorizationPrincipalNotFound',
    description:
      'An AuthorizationPolicy names a principal `<trust domain>/ns/<namespace>/sa/<service account>` that no Workload of the mesh runs as (Kiali KIA0106), so the rule never matches it. Fix the namespace or service account, or give the Workload that serviceAccount.',
  },
  SNW1017: {
    level: 'warning',
    name: 'AuthorizationHostNotFound',
    description:
      'An AuthorizationPolicy operation names a host (`to.operation.hosts`, `notHosts`) that no Service, ServiceEntry, Gateway or VirtualService of the mesh has (Kiali KIA0104); requests carry the host they are sent to, so the rule never matches it. Fix the host (the Host header a client sends, such as `httpbin.foo` or `httpbin.foo.svc.cluster.local`).',
  },
  SNW1018: {
    level: 'warning',
    name: 'AuthorizationHttpFieldsOnTcpWorkload',
    description:
      'An AuthorizationPolicy uses HTTP-only fields (methods, paths, hosts, requestPrincipals, request.* conditions) for workloads that serve only TCP ports. Istio cannot check them on TCP: an ALLOW rule with them is ignored (so the policy allows less), and a DENY rule is applied without them (so it denies every connection it otherwise covers). Drop those fields, or name the port protocol (`http-...`) if the port is HTTP.',
  },
  SNW1020: {
    level: 'warning',
    name: 'TlsFileNotReadable',
    description:
      'A Gateway server or a DestinationRule names a certificate, key or CA by file path (serverCertificate, clientCertificate, privateKey, caCertificates) that the machine the mesh runs on cannot read. Proxies read such files themselves: until it can be read, the gateway does not serve that server and the rule\'s clusters wait (503 UH). Reported by `sinew apply` when the control plane shares its machine with the proxies (`sinew up`); write the file, or fix its path or its permissions.',
  },
  SNW1021: {
    level: 'warning',
    name: 'GatewayCredentialInOtherNamespace',
    description:
      'A Gateway server\'s credentialName names a Secret that exists, but not in the namespace of the gateway proxies its selector picks (istio-system for Istio\'s istio-ingressgateway and istio-egressgateway). Gateways read credentialName from their own namespace only, as Istio\'s do, so that server is not served. Create the Secret in the gateway\'s namespace.',
  },
  SNW1019: {
    level: 'warning',
    name: 'StrictMtlsOnTcpPort',
    description:
      'Retired: sidecars terminate Istio mutual TLS on TCP ports as on HTTP ones (compiler/inbound.ts, proxy/tcp/listener.ts), so a STRICT TCP port admits sidecars and closes plaintext clients, as in Istio. It used to warn that a STRICT PeerAuthentication covering a TCP port (tcp, tls, https, mongo, redis, mysql) admitted no connection at all.',
  },
};
