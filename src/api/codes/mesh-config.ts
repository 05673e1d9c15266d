import type { CodeTable } from './types.js';

/**
 * SNW045x: the mesh config file (`--mesh-config`: Istio's MeshConfig, the `istio` ConfigMap or
 * an IstioOperator's meshConfig), checked when `sinew up` and `sinew controlplane` read it.
 * Structure errors use the SNW01xx codes.
 */
export const meshConfigCodes: CodeTable = {
  SNW0450: {
    level: 'error',
    name: 'InvalidExtensionProvider',
    description:
      'An extensionProviders entry is not usable: it needs a name no other provider has, exactly one provider kind (opentelemetry, zipkin, envoyFileAccessLog, prometheus, ...), a service and a port 1-65535 where the kind sends somewhere, and an access log format Envoy can read. Istio refuses such a mesh config too.',
  },
  SNW0451: {
    level: 'warning',
    name: 'UnknownDefaultProvider',
    description: 'defaultProviders names a provider that extensionProviders does not define (nor Istio\'s built-in prometheus, stackdriver and envoy); Istio skips it, so that kind of telemetry goes nowhere. Define the provider or fix the name.',
  },
  SNW0452: {
    level: 'warning',
    name: 'MeshConfigFieldNotApplied',
    description:
      'A MeshConfig field Istio has and Sinew reads but does not apply (Sinew applies rootNamespace, outboundTrafficPolicy, enableTracing, accessLogFile / accessLogEncoding / accessLogFormat, defaultConfig.tracing.sampling, defaultConfig.gatewayTopology.numTrustedProxies, defaultProviders, pathNormalization, dnsRefreshRate, and the opentelemetry (over HTTP), zipkin, envoyFileAccessLog, prometheus and envoyExtAuthzHttp extension providers). It has no effect.',
  },
};
