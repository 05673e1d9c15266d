/**
 * Istio's ServiceEntry, WorkloadEntry and WorkloadGroup rules beyond the upstream tables.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateText } from '../../src/config/validate.js';
import { describeDiagnostics } from './registry-helpers.js';

function doc(kind: string, spec: string, meta = ''): string {
  return `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata:\n  name: e\n  namespace: foo\n${meta}spec:\n${spec.replace(/^\n/, '').replace(/^/gm, '  ')}\n`;
}
const se = (spec: string, meta = '') => doc('ServiceEntry', spec, meta);

function expectFinding(text: string, level: 'error' | 'warning', path: string, code: string, words: RegExp): void {
  const r = validateText('entry.yaml', text);
  const found = r.diagnostics.find((d) => d.level === level && d.path === path && d.code === code && words.test(d.message));
  assert.ok(found, `expected ${level} ${code} at ${path} matching ${words}, got:\n${describeDiagnostics(r.diagnostics)}`);
}

function expectNoErrors(text: string): void {
  const r = validateText('entry.yaml', text);
  assert.equal(r.diagnostics.filter((d) => d.level === 'error').length, 0, describeDiagnostics(r.diagnostics));
  assert.equal(r.resources.length, 1);
}

describe('ServiceEntry', () => {
  test('an external HTTPS API with DNS resolution validates cleanly', () => {
    const r = validateText('e.yaml', se('hosts: [api.example.com]\nports: [{number: 443, name: https, protocol: HTTPS}]\nresolution: DNS\nlocation: MESH_EXTERNAL'));
    assert.equal(r.diagnostics.length, 0, describeDiagnostics(r.diagnostics));
  });

  test('enums and fields are strict, with suggestions', () => {
    expectFinding(se('hosts: [a.com]\nresolution: dns'), 'error', 'spec.resolution', 'SNW0103', /did you mean "DNS"/);
    expectFinding(se('hosts: [a.com]\nport: [{number: 80, name: http}]'), 'error', 'spec.port', 'SNW0104', /did you mean "ports"/);
  });

  test('several hosts cannot share a plain TCP port unless resolution is NONE', () => {
    expectFinding(se('hosts: [a.com, b.com]\nports: [{number: 3306, name: mysql, protocol: TCP}]\nresolution: DNS'), 'error', 'spec.ports', 'SNW0321', /multiple hosts/);
    expectNoErrors(se('hosts: [a.com, b.com]\nports: [{number: 443, name: tls, protocol: TLS}]\nresolution: DNS'));
  });

  test('ports: protocol, name and exportTo are checked', () => {
    expectFinding(se('hosts: [a.com]\nports: [{number: 80, name: http, protocol: HTTP3}]\nresolution: DNS'), 'error', 'spec.ports[0].protocol', 'SNW0308', /unsupported protocol: HTTP3/);
    expectFinding(se('hosts: [a.com]\nports: [{number: 80, name: web_port}]\nresolution: DNS'), 'error', 'spec.ports[0].name', 'SNW0307', /invalid port name/);
    expectFinding(se('hosts: [a.com]\nexportTo: [foo, "."]'), 'error', 'spec.exportTo[1]', 'SNW0319', /\. and current namespace foo/);
    expectFinding(se('hosts: [a.com]\nexportTo: ["*", bar]'), 'error', 'spec.exportTo', 'SNW0319', /public/);
  });

  test('STATIC endpoints: IPs or unix sockets, port names of the entry', () => {
    const base = 'hosts: [db.internal]\nports: [{number: 5432, name: pg, protocol: TCP}]\naddresses: [10.1.0.5]\nresolution: STATIC\n';
    expectNoErrors(se(`${base}endpoints: [{address: 10.0.0.1, ports: {pg: 6432}}, {address: "unix:///var/run/pg.sock"}]`));
    expectFinding(se(`${base}endpoints: [{address: "unix:///tmp/s", ports: {pg: 1}}]`), 'error', 'spec.endpoints[0].ports', 'SNW0314', /must not include ports/);
    expectFinding(se(`${base}endpoints: [{address: 10.0.0.1, labels: {"bad key!": x}}]`), 'error', 'spec.endpoints[0].labels', 'SNW0315', /invalid tag key/);
  });

  test('DYNAMIC_DNS accepts wildcard hosts', () => {
    expectNoErrors(se('hosts: ["*.example.com"]\nports: [{number: 443, name: tls, protocol: TLS}]\nresolution: DYNAMIC_DNS'));
  });

  test('dry-run is for AuthorizationPolicy only', () => {
    expectFinding(se('hosts: [a.com]', '  annotations:\n    istio.io/dry-run: "true"\n'), 'error', 'metadata.annotations["istio.io/dry-run"]', 'SNW0327', /unsupported annotation/);
  });

  test('hosts with an all-numeric top-level domain are refused', () => {
    expectFinding(se('hosts: [foo.123]'), 'error', 'spec.hosts[0]', 'SNW0300', /all-numeric/);
  });
});

describe('WorkloadEntry and WorkloadGroup', () => {
  test('a VM workload entry validates', () => {
    const r = validateText('we.yaml', doc('WorkloadEntry', 'address: 10.0.0.7\nlabels: {app: ratings, version: v1}\nserviceAccount: ratings\nports: {http: 9080}'));
    assert.equal(r.diagnostics.length, 0, describeDiagnostics(r.diagnostics));
  });

  test('an address that is neither an IP nor an FQDN is refused', () => {
    expectFinding(doc('WorkloadEntry', 'address: "not an address"'), 'error', 'spec.address', 'SNW0312', /not a valid FQDN or an IP address/);
  });

  test('a probe needs one method; negative timings are refused', () => {
    expectFinding(doc('WorkloadGroup', 'template: {}\nprobe: {periodSeconds: 5}'), 'error', 'spec.probe', 'SNW0325', /health check method/);
    expectFinding(doc('WorkloadGroup', 'template: {}\nprobe: {periodSeconds: -1, tcpSocket: {port: 80}}'), 'error', 'spec.probe.periodSeconds', 'SNW0325', /non-negative/);
    expectFinding(doc('WorkloadGroup', 'template: {}\nprobe: {exec: {command: []}}'), 'error', 'spec.probe.exec.command', 'SNW0325', /exec.command is required/);
  });

  test('the template is required', () => {
    expectFinding(doc('WorkloadGroup', 'metadata: {labels: {app: a}}'), 'error', 'spec.template', 'SNW0102', /required/);
  });
});

describe('diagnostic codes', () => {
  test('every code the registry and security rules emit is documented in the code tables, at its level', async () => {
    const { readFileSync } = await import('node:fs');
    const path = await import('node:path');
    const { diagnosticCodes } = await import('../../src/api/diagnostics.js');
    const { repoRoot } = await import('./registry-helpers.js');
    const files = ['service-entry', 'workload-entry', 'peer-authentication', 'authorization-policy', 'request-authentication', 'telemetry', 'kubernetes', 'workload'];
    for (const f of files) {
      const text = readFileSync(path.join(repoRoot, 'src/config/semantic', `${f}.ts`), 'utf8');
      for (const m of text.matchAll(/ctx\.(error|warn)\([^;]*?'(SNW\d{4})'/gs)) {
        const info = diagnosticCodes[m[2]];
        assert.ok(info, `${f}.ts uses ${m[2]}, which no code table defines`);
        // Istio only warns about an empty tag-override name, while the rest of SNW0443 are errors.
        if (m[2] !== 'SNW0443') assert.equal(info.level, m[1] === 'warn' ? 'warning' : 'error', `${f}.ts reports ${m[2]} as ${m[1]}`);
      }
    }
    for (const [code, info] of Object.entries(diagnosticCodes).filter(([c]) => /^SNW0[34]/.test(c))) {
      assert.ok(info.name && info.description.endsWith('.'), `${code} needs a name and a one-sentence description`);
    }
  });
});
