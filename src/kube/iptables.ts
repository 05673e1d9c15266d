/**
 * The nat rules of Istio's istio-init (tools/istio-iptables, REDIRECT mode), as an
 * `iptables-restore` input for the pod's network namespace:
 *
 *   inbound   PREROUTING -> ISTIO_INBOUND: the excluded ports (the proxy's own 15090, 15021,
 *             15020 and `-d`) return; the others (all, or the `-b` list) -> ISTIO_IN_REDIRECT
 *             -> REDIRECT to 15006
 *   outbound  OUTPUT -> ISTIO_OUTPUT: the proxy's own traffic (UID/GID 1337) returns, except
 *             what it sends to the pod's own address over lo (that goes inbound, so a pod
 *             calling its own service is still served by its sidecar); other loopback traffic
 *             and 127.0.0.1 return; excluded ports and CIDRs return; the rest (or the `-i`
 *             CIDRs, `-q` ports) -> ISTIO_REDIRECT -> REDIRECT to 15001
 *
 * 127.0.0.6 is the source the proxy uses for inbound passthrough in Istio; its traffic on lo
 * returns first, as there.
 */

export interface CaptureOptions {
  /** -p: where outbound connections go (15001). */
  outboundPort: number;
  /** -z: where inbound connections go (15006). */
  inboundPort: number;
  /** -u / -g: the proxy's user and group, never captured (1337). */
  proxyUid: string;
  proxyGid: string;
  /** -i: outbound CIDRs captured, `*` for all, empty for none. */
  includeOutboundCidrs: string;
  /** -x: outbound CIDRs never captured. */
  excludeOutboundCidrs: string;
  /** -b: inbound ports captured, `*` for all, empty for none. */
  includeInboundPorts: string;
  /** -d: inbound ports never captured. */
  excludeInboundPorts: string;
  /** -q: outbound ports always captured. */
  includeOutboundPorts: string;
  /** -o: outbound ports never captured. */
  excludeOutboundPorts: string;
}

export const DEFAULT_CAPTURE: CaptureOptions = Object.freeze({
  outboundPort: 15001,
  inboundPort: 15006,
  proxyUid: '1337',
  proxyGid: '1337',
  includeOutboundCidrs: '*',
  excludeOutboundCidrs: '',
  includeInboundPorts: '*',
  excludeInboundPorts: '15090,15021,15020',
  includeOutboundPorts: '',
  excludeOutboundPorts: '',
});

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

/** Every problem with the options at once (ports, CIDRs), empty when fine. */
export function captureProblems(o: CaptureOptions): string[] {
  const problems: string[] = [];
  const port = (name: string, v: string | number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) problems.push(`${name}: "${v}" is not a port`);
  };
  port('-p', o.outboundPort);
  port('-z', o.inboundPort);
  for (const [flag, value] of [['-b', o.includeInboundPorts], ['-d', o.excludeInboundPorts], ['-q', o.includeOutboundPorts], ['-o', o.excludeOutboundPorts]] as const) {
    if (value === '*') continue;
    for (const p of list(value)) port(flag, p);
  }
  for (const [flag, value] of [['-i', o.includeOutboundCidrs], ['-x', o.excludeOutboundCidrs]] as const) {
    if (value === '*') continue;
    for (const c of list(value)) if (!/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(c)) problems.push(`${flag}: "${c}" is not an IPv4 CIDR`);
  }
  for (const [flag, value] of [['-u', o.proxyUid], ['-g', o.proxyGid]] as const) if (!/^\d+$/.test(value)) problems.push(`${flag}: "${value}" is not a numeric id`);
  return problems;
}

/** The `iptables-restore --noflush` input that sets the capture up. */
export function captureRules(o: CaptureOptions): string {
  const lines = ['*nat', ':ISTIO_INBOUND - [0:0]', ':ISTIO_IN_REDIRECT - [0:0]', ':ISTIO_OUTPUT - [0:0]', ':ISTIO_REDIRECT - [0:0]'];
  const inbound = o.includeInboundPorts !== '';
  // Inbound.
  lines.push(`-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`);
  if (inbound) {
    lines.push('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    // 15008, Istio's HBONE tunnel port, is never captured either.
    lines.push('-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN');
    if (o.includeInboundPorts === '*') {
      for (const p of list(o.excludeInboundPorts)) lines.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`);
      lines.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
    } else {
      const excluded = new Set(list(o.excludeInboundPorts));
      for (const p of list(o.includeInboundPorts)) if (!excluded.has(p)) lines.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j ISTIO_IN_REDIRECT`);
    }
  }
  // Outbound.
  lines.push(`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${o.outboundPort}`);
  lines.push('-A OUTPUT -p tcp -j ISTIO_OUTPUT');
  for (const p of list(o.excludeOutboundPorts)) lines.push(`-A ISTIO_OUTPUT -p tcp --dport ${p} -j RETURN`);
  lines.push('-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN');
  for (const [match, id] of [['--uid-owner', o.proxyUid], ['--gid-owner', o.proxyGid]] as const) {
    if (inbound) lines.push(`-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner ${match} ${id} -j ISTIO_IN_REDIRECT`);
    lines.push(`-A ISTIO_OUTPUT -o lo -m owner ! ${match} ${id} -j RETURN`);
    lines.push(`-A ISTIO_OUTPUT -m owner ${match} ${id} -j RETURN`);
  }
  lines.push('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN');
  for (const p of list(o.includeOutboundPorts)) lines.push(`-A ISTIO_OUTPUT -p tcp --dport ${p} -j ISTIO_REDIRECT`);
  for (const c of list(o.excludeOutboundCidrs)) lines.push(`-A ISTIO_OUTPUT -d ${c} -j RETURN`);
  if (o.includeOutboundCidrs === '*') lines.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  else for (const c of list(o.includeOutboundCidrs)) lines.push(`-A ISTIO_OUTPUT -d ${c} -j ISTIO_REDIRECT`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Removes what captureRules set (istio-iptables --clean / istio-clean-iptables). */
export function cleanupRules(): string {
  const chains = ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT'];
  return ['*nat', '-D PREROUTING -p tcp -j ISTIO_INBOUND', '-D OUTPUT -p tcp -j ISTIO_OUTPUT', ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
}
