export { ServiceRegistry, buildRegistrySnapshot, selectorMatches } from './registry.js';
export type { WorkloadInstance, RegistryOptions, RegistryListener } from './registry.js';
export { resolveHost, searchCandidates, serviceFqdn, spiffeIdentity, DEFAULT_DOMAIN_SUFFIX } from './hosts.js';
export { kubeServicePortProtocol, parseProtocol, protocolFromPortName, isHttpProtocol } from './protocol.js';
export type { RegistrySnapshot, RegistryService, RegistryEndpoint, RegistryServicePort, ServiceProtocol } from '../api/registry-snapshot.js';
