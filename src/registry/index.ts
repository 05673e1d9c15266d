export { ServiceRegistry, buildRegistrySnapshot } from './registry.js';
export type { WorkloadInstance, RegistryOptions, RegistryListener } from './registry.js';
export { kubeServicePortProtocol, parseProtocol, protocolFromPortName, isHttpProtocol } from './protocol.js';
export type { RegistrySnapshot, RegistryService, RegistryEndpoint, RegistryServicePort, ServiceProtocol } from '../api/registry-snapshot.js';
