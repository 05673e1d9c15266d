import type { CodeTable } from './types.js';

/** SNW04xx: security and telemetry (PeerAuthentication, AuthorizationPolicy, RequestAuthentication, Telemetry). */
export const securityCodes: CodeTable = {
  // --- shared by the policy kinds ---
  SNW0400: { level: 'error', name: 'InvalidSelector', description: 'A selector has an empty label key or a "*": matchLabels match exact labels.' },
  SNW0401: { level: 'warning', name: 'SelectorWithoutLabels', description: 'A selector without labels applies to every workload in the namespace, like having no selector.' },
  SNW0402: { level: 'error', name: 'SelectorAndTargetRef', description: 'Set only one of selector, targetRef and targetRefs.' },
  SNW0403: { level: 'error', name: 'InvalidTargetRef', description: 'A targetRef must name a Service, ServiceEntry or Gateway (gateway.networking.k8s.io) in the same namespace.' },
  SNW0404: { level: 'error', name: 'InvalidDryRun', description: 'The istio.io/dry-run annotation is only for AuthorizationPolicy with action ALLOW or DENY, with a true/false value.' },

  // --- AuthorizationPolicy ---
  SNW0410: { level: 'error', name: 'CustomActionInvalid', description: 'A CUSTOM policy needs rules (an empty rule {} matches every request) and cannot use principals, namespaces or request.auth conditions.' },
  SNW0411: { level: 'error', name: 'ProviderMismatch', description: 'provider.name is required with action CUSTOM and not allowed with other actions.' },
  SNW0412: { level: 'error', name: 'DenyWithoutRules', description: 'A DENY policy without rules never matches; add an empty rule {} to deny every request.' },
  SNW0413: { level: 'error', name: 'EmptyRuleClause', description: 'from/to must not be empty lists, and each item needs a non-empty source or operation.' },
  SNW0414: { level: 'error', name: 'EmptyValue', description: 'An empty string in a source, operation or condition list matches nothing; remove it.' },
  SNW0415: { level: 'error', name: 'InvalidIPBlock', description: 'An ipBlocks / remoteIpBlocks entry is not an IP address or CIDR range.' },
  SNW0416: { level: 'error', name: 'InvalidPort', description: 'A port in ports / notPorts / destination.port is not a number in 0..65535.' },
  SNW0417: { level: 'error', name: 'InvalidPathTemplate', description: 'A path template may use only {*} and {**}; named variables and bare * segments are not supported.' },
  SNW0418: { level: 'error', name: 'InvalidCondition', description: 'A when condition has an empty or unknown key, no values, or a value that is invalid for its key.' },
  SNW0419: { level: 'warning', name: 'DenyHttpOnlyOnTcp', description: 'A DENY rule using only HTTP attributes denies all traffic to TCP ports under its scope; name the ports explicitly.' },
  SNW0420: { level: 'error', name: 'ServiceAccountsConflict', description: 'serviceAccounts cannot be combined with namespaces or principals in one source; split them into separate sources.' },

  // --- PeerAuthentication ---
  SNW0425: { level: 'error', name: 'PortLevelMtlsWithoutSelector', description: 'Port-level mTLS needs a selector with labels; a mesh or namespace policy cannot have it.' },
  SNW0426: { level: 'error', name: 'EmptyPortLevelMtls', description: 'portLevelMtls, if present, must have at least one port.' },
  SNW0427: { level: 'error', name: 'InvalidMtlsPort', description: 'A portLevelMtls key must be a port number in 1..65535.' },

  // --- RequestAuthentication ---
  SNW0430: { level: 'error', name: 'JwtIssuerMissing', description: 'A JWT rule needs an issuer (or at least a jwksUri).' },
  SNW0431: { level: 'error', name: 'InvalidJwksUri', description: 'jwksUri must be an http:// or https:// URL.' },
  SNW0432: { level: 'error', name: 'InvalidJwks', description: 'jwks is not a JSON Web Key Set (or key) in JSON.' },
  SNW0433: { level: 'error', name: 'JwksConflict', description: 'Set only one of jwks and jwksUri.' },
  SNW0434: { level: 'error', name: 'InvalidTokenLocation', description: 'fromHeaders names, fromParams and fromCookies must be non-empty.' },
  SNW0435: { level: 'error', name: 'InvalidClaimToHeader', description: 'outputClaimToHeaders needs a claim and a valid header name ([-_A-Za-z0-9]+).' },
  SNW0436: { level: 'error', name: 'InvalidDuration', description: 'A duration is malformed, below 1ms, or finer than a millisecond.' },
  SNW0437: { level: 'error', name: 'EmptyJwtValue', description: 'audiences and spaceDelimitedClaims entries must be non-empty strings.' },

  // --- Telemetry ---
  SNW0440: { level: 'error', name: 'ProviderNameEmpty', description: 'A telemetry provider reference needs a name (a provider from mesh config).' },
  SNW0441: { level: 'error', name: 'InvalidSamplingPercentage', description: 'randomSamplingPercentage must be in 0..100.' },
  SNW0442: { level: 'error', name: 'InvalidCustomTag', description: 'A tracing custom tag needs a name and exactly one non-empty literal, environment, header or formatter.' },
  SNW0443: { level: 'error', name: 'InvalidTagOverride', description: 'A tag override needs a value for UPSERT (the default) and none for REMOVE.' },
  SNW0444: { level: 'error', name: 'InvalidMetricSelector', description: 'A metric selector sets either metric or a non-empty customMetric.' },
  SNW0445: { level: 'warning', name: 'MultipleTracing', description: 'Only one tracing configuration and one provider per Telemetry are used.' },
};
