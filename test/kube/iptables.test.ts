/** `sinew iptables`' rules: istio-init's, for its defaults and for the traffic annotations. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { captureProblems, captureRules, DEFAULT_CAPTURE } from '../../src/kube/iptables.js';
import { iptablesArgs } from '../../src/kube/inject.js';
import { main } from '../../src/cli/main.js';

/**
 * The nat rules istio-iptables (Istio 1.13, REDIRECT mode) writes for the injected defaults
 * (`-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020`), as its
 * "Writing following contents to rules file" log prints them, per chain in order.
 */
const ISTIO_DEFAULT_RULES: Record<string, string[]> = {
  PREROUTING: ['-p tcp -j ISTIO_INBOUND'],
  OUTPUT: ['-p tcp -j ISTIO_OUTPUT'],
  ISTIO_INBOUND: ['-p tcp --dport 15008 -j RETURN', '-p tcp --dport 15090 -j RETURN', '-p tcp --dport 15021 -j RETURN', '-p tcp --dport 15020 -j RETURN', '-p tcp -j ISTIO_IN_REDIRECT'],
  ISTIO_IN_REDIRECT: ['-p tcp -j REDIRECT --to-ports 15006'],
  ISTIO_REDIRECT: ['-p tcp -j REDIRECT --to-ports 15001'],
  ISTIO_OUTPUT: [
    '-o lo -s 127.0.0.6/32 -j RETURN',
    '-o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
    '-o lo -m owner ! --uid-owner 1337 -j RETURN',
    '-m owner --uid-owner 1337 -j RETURN',
    '-o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
    '-o lo -m owner ! --gid-owner 1337 -j RETURN',
    '-m owner --gid-owner 1337 -j RETURN',
    '-d 127.0.0.1/32 -j RETURN',
    '-j ISTIO_REDIRECT',
  ],
};

/** Rules by chain, each rule's matches sorted so that option order does not matter. */
function byChain(rules: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of rules.split('\n')) {
    const m = /^-A (\S+) (.*)$/.exec(line);
    if (!m) continue;
    (out[m[1]!] ??= []).push(normalise(m[2]!));
  }
  return out;
}

function normalise(rule: string): string {
  // "-p tcp" on the ISTIO_IN_REDIRECT jumps from ISTIO_OUTPUT is implied by the chain's own rule.
  const [matches, target] = rule.split(' -j ');
  const parts = matches!.replace('-p tcp -m owner', '-m owner').match(/(! )?-{1,2}[a-z-]+( ! )?( [^-!][^ ]*)*/g) ?? [];
  return `${parts.map((p) => p.trim()).sort().join(' ')} -j ${target}`;
}

describe('sinew iptables', () => {
  it("writes istio-init's nat rules for the injected defaults", () => {
    const ours = byChain(captureRules(DEFAULT_CAPTURE));
    const istio = Object.fromEntries(Object.entries(ISTIO_DEFAULT_RULES).map(([chain, rules]) => [chain, rules.map(normalise)]));
    assert.deepEqual(ours, istio);
  });

  it('follows the traffic.sidecar.istio.io annotations, as the injector passes them', () => {
    const args = iptablesArgs({
      'traffic.sidecar.istio.io/includeInboundPorts': '8080,9090',
      'traffic.sidecar.istio.io/excludeInboundPorts': '9090',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.0/12',
      'traffic.sidecar.istio.io/excludeOutboundPorts': '5432',
    });
    const flag = (f: string) => args[args.indexOf(f) + 1];
    const rules = byChain(captureRules({ ...DEFAULT_CAPTURE, includeInboundPorts: flag('-b')!, excludeInboundPorts: flag('-d')!, excludeOutboundCidrs: flag('-x')!, excludeOutboundPorts: flag('-o')! }));
    assert.deepEqual(rules.ISTIO_INBOUND, ['--dport 15008 -p tcp -j RETURN', '--dport 8080 -p tcp -j ISTIO_IN_REDIRECT'].map(normalise));
    assert.ok(rules.ISTIO_OUTPUT!.includes(normalise('-d 10.96.0.0/12 -j RETURN')));
    assert.equal(rules.ISTIO_OUTPUT![0], normalise('-p tcp --dport 5432 -j RETURN'), 'excluded ports return before anything else');
  });

  it('refuses bad ports, CIDRs and modes with every problem, changing nothing', async () => {
    assert.deepEqual(captureProblems({ ...DEFAULT_CAPTURE, outboundPort: 70000, excludeOutboundCidrs: '10.0.0.0/8,not-a-cidr', includeInboundPorts: '80,x' }), [
      '-p: "70000" is not a port',
      '-b: "x" is not a port',
      '-x: "not-a-cidr" is not an IPv4 CIDR',
    ]);
    let err = '';
    const code = await main(['node', 'sinew', 'iptables', '-m', 'TPROXY', '-p', '0'], { out: () => {}, err: (t) => (err += t) });
    assert.equal(code, 2);
    assert.match(err, /-p: "0" is not a port/);
    assert.match(err, /-m: "TPROXY" is not supported; use REDIRECT/);
  });

  it('prints the rules with -n (dry run)', async () => {
    let out = '';
    assert.equal(await main(['node', 'sinew', 'iptables', '-n'], { out: (t) => (out += t), err: () => {} }), 0);
    assert.equal(out, captureRules(DEFAULT_CAPTURE));
  });
});
