/** The telemetry library's public surface for the proxy, the control plane and the CLI. */
export * from './events.js';
export * from './peer-metadata.js';
export * from './metrics.js';
export * from './propagation.js';
export * from './tracing.js';
export * from './trace-store.js';
export * from './access-log.js';
export * from './proxy-telemetry.js';
