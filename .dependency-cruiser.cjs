/**
 * The import directions of docs/architecture.md ("Parts and import directions").
 * Each part may import only the parts listed for it; everything else is an error.
 * `src/cli` may import anything, so it has no rule.
 */
const allowed = {
  api: [],
  core: ['api'],
  semantics: ['api', 'core'],
  config: ['api', 'core', 'semantics'],
  registry: ['api', 'core', 'config', 'semantics'],
  security: ['api', 'core'],
  compiler: ['api', 'core', 'semantics', 'security'],
  xds: ['api', 'core'],
  proxy: ['api', 'core', 'semantics', 'security', 'xds', 'telemetry'],
  ca: ['api', 'core'],
  telemetry: ['api', 'core'],
  controlplane: ['api', 'core', 'semantics', 'security', 'config', 'registry', 'compiler', 'xds', 'ca', 'telemetry', 'kube'],
  mesh: ['controlplane', 'proxy', 'config', 'registry', 'api', 'core'],
  kube: ['api', 'core', 'config', 'registry'],
  console: ['api'],
};
const parts = Object.keys(allowed).concat(['cli']);

module.exports = {
  forbidden: Object.entries(allowed).map(([part, may]) => ({
    name: `${part}-imports`,
    comment: `src/${part} may import only: ${may.length ? may.join(', ') : 'nothing of ours'} (docs/architecture.md)`,
    severity: 'error',
    from: { path: `^src/${part}/` },
    to: {
      path: `^src/(${parts.filter((p) => p !== part && !may.includes(p)).join('|')})/`,
    },
  })).concat([
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Circular imports make start-up order fragile (type-only imports are erased, so they do not count).',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-circular-proxy',
      severity: 'error',
      comment:
        'No import circles among src/proxy files, type-only imports included: the connection manager, the filters and the router know each other only through http/filter-api.ts and http/router/types.ts (docs/architecture.md).',
      from: { path: '^src/proxy/' },
      to: { circular: true, viaOnly: { path: '^src/proxy/' } },
    },
  ]),
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js'] },
  },
};
