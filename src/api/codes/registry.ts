import type { CodeTable } from './types.js';

/** SNW03xx: registry kinds (ServiceEntry, WorkloadEntry, WorkloadGroup, Service, Namespace, Workload). */
export const registryCodes: CodeTable = {
  // --- ServiceEntry (Istio's ValidateServiceEntry) ---
  SNW0300: { level: 'error', name: 'InvalidHost', description: 'A ServiceEntry host is not a valid DNS name (a wildcard is allowed only as the first label, and "*" alone is not allowed): fix the host.' },
  SNW0301: { level: 'error', name: 'ServiceEntryWithoutHosts', description: 'A ServiceEntry must name at least one host in spec.hosts.' },
  SNW0302: { level: 'error', name: 'InvalidAddress', description: 'An entry of spec.addresses is not an IP address or CIDR block.' },
  SNW0303: { level: 'error', name: 'CidrNeedsStaticOrNone', description: 'CIDR addresses are allowed only with resolution NONE or STATIC: use single IPs or change the resolution.' },
  SNW0304: { level: 'error', name: 'InvalidPortNumber', description: 'A port number is outside 1..65535.' },
  SNW0305: { level: 'error', name: 'DuplicatePortName', description: 'Two ports share one name; port names must be unique.' },
  SNW0306: { level: 'error', name: 'DuplicatePortNumber', description: 'Two ports share one number; port numbers must be unique.' },
  SNW0307: { level: 'error', name: 'InvalidPortName', description: 'A port name is not a DNS-1123 label (letters, digits and "-").' },
  SNW0308: { level: 'error', name: 'UnsupportedProtocol', description: 'A port protocol is not one Istio knows (HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, UDP, MONGO, REDIS, MYSQL); leave it empty to sniff.' },
  SNW0309: { level: 'error', name: 'SelectorWithEndpoints', description: 'A ServiceEntry may set workloadSelector or endpoints, not both.' },
  SNW0310: { level: 'error', name: 'EndpointsNotAllowed', description: 'The resolution mode does not allow these endpoints (NONE takes none, DNS_ROUND_ROBIN at most one).' },
  SNW0311: { level: 'error', name: 'HostNeedsFQDN', description: 'With DNS resolution and no endpoints, each host is resolved itself and must be a fully qualified name.' },
  SNW0312: { level: 'error', name: 'InvalidEndpointAddress', description: 'An endpoint or WorkloadEntry address is not valid for the resolution mode (STATIC needs an IP or unix socket, DNS an IP or FQDN).' },
  SNW0313: { level: 'error', name: 'UndefinedEndpointPort', description: 'An endpoint maps a port name that the ServiceEntry does not define.' },
  SNW0314: { level: 'error', name: 'InvalidUnixAddress', description: 'A unix:// address must be an absolute file path or an abstract socket (@name), and takes no ports.' },
  SNW0315: { level: 'error', name: 'InvalidLabel', description: 'A label key or value is not a valid Kubernetes label.' },
  SNW0316: { level: 'error', name: 'InvalidSelector', description: 'A workload selector has an empty key or a "*": selectors match exact labels.' },
  SNW0317: { level: 'warning', name: 'SelectorWithoutLabels', description: 'A workload selector without labels selects every workload in the namespace.' },
  SNW0318: { level: 'warning', name: 'IneffectiveSetting', description: 'A field has no effect with the other settings of this resource (for example targetPort or workloadSelector with resolution NONE).' },
  SNW0319: { level: 'error', name: 'InvalidExportTo', description: 'exportTo holds an invalid or duplicate entry, or mixes "*" or "~" with other entries.' },
  SNW0320: { level: 'warning', name: 'PartialWildcard', description: 'A host like "*foo.com" is a partial wildcard; Istio matches only "*." prefixes as wildcards.' },
  SNW0321: { level: 'error', name: 'MultipleHostsNonHTTP', description: 'Several hosts share non-HTTP, non-TLS ports; plain TCP cannot tell the hosts apart (use resolution NONE or one host).' },
  SNW0322: { level: 'error', name: 'AddressRequired', description: 'A WorkloadEntry needs an address (or a network, for a workload reached through a gateway).' },
  SNW0323: { level: 'warning', name: 'AddressesRecommended', description: 'Ports serving TCP need addresses (or DNS auto-allocation) to be told apart; add spec.addresses.' },
  SNW0324: { level: 'error', name: 'HostNeedsWildcard', description: 'Resolution DYNAMIC_DNS resolves the requested name at request time and needs a wildcard host ("*.example.com").' },
  SNW0325: { level: 'error', name: 'InvalidProbe', description: 'A readiness probe is invalid: set exactly one method, with a valid port, header names and non-negative timings.' },
  SNW0327: { level: 'error', name: 'DryRunUnsupported', description: 'Only AuthorizationPolicy supports the istio.io/dry-run annotation; remove it.' },

  // --- Kubernetes Service and Namespace ---
  SNW0330: { level: 'error', name: 'InvalidServicePort', description: 'A Service port is invalid (port or targetPort outside 1..65535, a bad named targetPort, or nodePort on a ClusterIP Service).' },
  SNW0331: { level: 'error', name: 'ServicePortNameRequired', description: 'A Service with more than one port must name every port, with unique names.' },
  SNW0332: { level: 'error', name: 'DuplicateServicePort', description: 'Two Service ports share the same port number and protocol.' },
  SNW0333: { level: 'error', name: 'ExternalNameRequired', description: 'A Service of type ExternalName needs spec.externalName, a DNS name.' },

  // --- Sinew Workload ---
  SNW0340: { level: 'error', name: 'CommandRequired', description: 'A Workload needs a command: a non-empty list whose first item is the program to run.' },
  SNW0341: { level: 'error', name: 'InvalidContainerPort', description: 'A Workload port is invalid: containerPort outside 1..65535, duplicated, or a bad or duplicate name.' },
  SNW0342: { level: 'error', name: 'UnknownProbePort', description: 'The readiness probe port is not one of the Workload\'s ports (by number or name); the runner can only probe declared ports.' },
  SNW0343: { level: 'error', name: 'InvalidReplicas', description: 'replicas must be an integer of 0 or more.' },
  SNW0344: { level: 'error', name: 'InvalidEnv', description: 'An env entry has an empty name, a name with "=", or repeats a name.' },
  SNW0345: { level: 'warning', name: 'ReservedEnv', description: 'The embedded runner sets this variable itself (PORT, PORT_<containerPort> for each of the Workload\'s ports, HOST, SINEW_WORKLOAD, SINEW_NAMESPACE, SINEW_MESH_RUN, and HTTP_PROXY, HTTPS_PROXY, grpc_proxy and NO_PROXY in both cases); the value given is replaced.' },
  SNW0346: { level: 'error', name: 'InvalidProbeTiming', description: 'Probe timings must be non-negative (and thresholds, period and timeout at least 1).' },
  SNW0347: { level: 'error', name: 'InvalidServiceAccount', description: 'serviceAccount must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".").' },
};
