/** SNW1011: a Gateway server that terminates TLS, which the mesh cannot serve yet. */
import type { Diagnostic } from '../../api/diagnostics.js';
import { finding, ofKind, type Analyzer, type Gateway } from './common.js';

/** Modes in which the gateway itself holds the certificate (PASSTHROUGH ones forward TLS untouched). */
const TERMINATING = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL', 'ISTIO_MUTUAL']);

export const analyzeGatewayTls: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  for (const gw of ofKind<Gateway>(resources, 'Gateway')) {
    for (const [i, server] of (gw.spec.servers ?? []).entries()) {
      const mode = server.tls?.mode ?? 'SIMPLE';
      if (server.port.protocol.toUpperCase() !== 'HTTPS' || !TERMINATING.has(mode)) continue;
      const credential = server.tls?.credentialName ? ` (credentialName ${server.tls.credentialName})` : '';
      out.push(
        finding(gw, 'SNW1011', ['spec', 'servers', i, 'tls'], `port ${server.port.number} terminates TLS${credential}, but the mesh cannot load TLS credentials yet: this port is not served; the gateway's other ports are`),
      );
    }
  }
  return out;
};
