/**
 * Istio's Gateway rules, after istio/istio pkg/config/validation/validation.go (ValidateGateway,
 * validateServer, validateServerPort, validateServerBind, validateTLSOptions) and
 * agent/validation.go (ValidateNamespaceSlashWildcardHostname), with their wording.
 */
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import { VALID_CIPHER_SUITES } from '../../semantics/tls.js';
import {
  asArray,
  asObject,
  checkIstioIPAddress,
  checkIstioWildcardDomain,
  checkPartialWildcard,
  checkPort,
  checkUnixAddress,
  isHttpProtocol,
  isIPAddress,
  isIstioDNS1123Label,
  isObject,
  isTlsProtocol,
  parseProtocol,
} from './rules.js';

type Obj = Record<string, unknown>;
const has = (v: unknown): boolean => v !== undefined && v !== null && v !== '';
const UNIX_PREFIX = 'unix://';

/** Istio's Gateway rules (ValidateGateway). */
export function validateGateway(spec: unknown, ctx: SemanticContext): void {
  const gw = asObject(spec);
  // A Gateway's name becomes part of listener and route names: a DNS label, no dots.
  const name = ctx.metadata.name;
  if (typeof name === 'string' && name !== '' && !isIstioDNS1123Label(name)) {
    ctx.error(['metadata', 'name'], 'SNW0204', `invalid gateway name: "${name}"`);
  }
  const servers = asArray(gw.servers);
  if (servers.length === 0) ctx.error(['spec', 'servers'], 'SNW0260', 'gateway must have at least one server');
  servers.forEach((s, i) => {
    if (!isObject(s)) ctx.error(['spec', 'servers', i], 'SNW0260', 'server may not be nil');
    else validateServer(ctx, s, ['spec', 'servers', i]);
  });

  const portNames = new Set<string>();
  servers.forEach((s, i) => {
    const port = asObject(asObject(s).port);
    if (!isObject(asObject(s).port)) return;
    const portName = typeof port.name === 'string' ? port.name : '';
    if (portNames.has(portName)) {
      ctx.error(['spec', 'servers', i, 'port', 'name'], 'SNW0262', `port names in servers must be unique: duplicate name ${portName}`);
    }
    portNames.add(portName);
    const tls = asObject(asObject(s).tls);
    if (!isHttpProtocol(parseProtocol(port.protocol)) && tls.httpsRedirect === true) {
      ctx.warn(['spec', 'servers', i, 'tls', 'httpsRedirect'], 'SNW0265', 'tls.httpsRedirect should only be used with http servers');
    }
  });
}

function validateServer(ctx: SemanticContext, server: Obj, base: FieldPath): void {
  const hosts = asArray(server.hosts);
  if (hosts.length === 0) ctx.error([...base, 'hosts'], 'SNW0261', 'server config must contain at least one host');
  hosts.forEach((h, i) => {
    if (typeof h !== 'string') return;
    for (const msg of checkNamespaceSlashHost(h, true)) ctx.error([...base, 'hosts', i], 'SNW0261', msg);
  });

  const bind = typeof server.bind === 'string' ? server.bind : '';
  const portOk = validateServerPort(ctx, server.port, bind, [...base, 'port']);
  validateServerBind(ctx, server.port, bind, base);
  validateServerTLS(ctx, server.tls, [...base, 'tls']);

  // HTTPS and TLS servers terminate or pass through TLS, so they need its settings; plain
  // text ports must not have them (except an HTTP server that only redirects to HTTPS).
  if (!portOk) return;
  const protocol = parseProtocol(asObject(server.port).protocol);
  const tls = server.tls;
  if (isTlsProtocol(protocol) && !isObject(tls)) {
    ctx.error([...base, 'tls'], 'SNW0263', 'server must have TLS settings for HTTPS/TLS protocols');
  } else if (!isTlsProtocol(protocol) && isObject(tls)) {
    if (isHttpProtocol(protocol)) {
      if (!isPassthrough(tls) || has(tls.caCertificates) || has(tls.privateKey) || has(tls.serverCertificate)) {
        ctx.error([...base, 'tls'], 'SNW0263', 'server cannot have TLS settings for plain text HTTP ports');
      }
    } else {
      ctx.error([...base, 'tls'], 'SNW0263', 'server cannot have TLS settings for non HTTPS/TLS ports');
    }
  }
}

/** gateway.IsPassThroughServer: an unset mode is PASSTHROUGH (the enum's zero value). */
function isPassthrough(tls: Obj): boolean {
  const mode = tls.mode ?? 'PASSTHROUGH';
  return mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH';
}

/** validateServerPort; returns whether the port is usable for the protocol checks. */
function validateServerPort(ctx: SemanticContext, port: unknown, bind: string, path: FieldPath): boolean {
  if (!isObject(port)) {
    ctx.error(path, 'SNW0262', 'port is required');
    return false;
  }
  let ok = true;
  const fail = (at: FieldPath, msg: string) => {
    ok = false;
    ctx.error(at, 'SNW0262', msg);
  };
  // A missing number, protocol or name is already reported by the structure check (the CRD
  // requires them); here only their values are judged, so nothing is said twice.
  const protocol = typeof port.protocol === 'string' ? port.protocol : '';
  if (typeof port.protocol !== 'string') ok = false;
  else if (parseProtocol(protocol) === undefined || protocol === '') {
    fail([...path, 'protocol'], `invalid protocol "${protocol}", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP`);
  }
  const number = typeof port.number === 'number' ? port.number : 0;
  // Port 0 is how a server listens on a unix domain socket only.
  if (typeof port.number !== 'number') ok = false;
  else if (number > 0 || !bind.startsWith(UNIX_PREFIX)) {
    const err = checkPort(number);
    if (err) fail([...path, 'number'], err);
  }
  if (typeof port.targetPort === 'number' && port.targetPort > 0) fail([...path, 'targetPort'], 'targetPort has no impact on Gateways');
  if (port.name === '') fail([...path, 'name'], `port name must be set: number:${number} protocol:"${protocol}"`);
  return ok;
}

function validateServerBind(ctx: SemanticContext, port: unknown, bind: string, base: FieldPath): void {
  if (bind.startsWith(UNIX_PREFIX)) {
    const err = checkUnixAddress(bind.slice(UNIX_PREFIX.length));
    if (err) ctx.error([...base, 'bind'], 'SNW0264', err);
    const number = asObject(port).number;
    if (typeof number === 'number' && number !== 0) ctx.error([...base, 'port', 'number'], 'SNW0264', `port number must be 0 for unix domain socket: ${number}`);
  } else if (bind !== '') {
    const err = checkIstioIPAddress(bind);
    if (err) ctx.error([...base, 'bind'], 'SNW0264', err);
  }
}

// === hosts (agent.ValidateNamespaceSlashWildcardHostname) ===

/**
 * `[namespace/]dnsName` for Gateway servers (`isGateway`: namespace `*`, `.` or a name; an IP
 * or an old-style bare host allowed) and Sidecar egress (`namespace/` required, `~` allowed).
 * Returns every problem found.
 */
export function checkNamespaceSlashHost(value: string, isGateway: boolean): string[] {
  const slash = value.indexOf('/');
  if (slash < 0) {
    if (isGateway) return checkHostnamePart(value, true);
    return ['host must be of form namespace/dnsName'];
  }
  const ns = value.slice(0, slash);
  const host = value.slice(slash + 1);
  const out: string[] = [];
  if (ns === '' || host === '') out.push('config namespace and dnsName in host entry cannot be empty');
  const special = isGateway ? ['*', '.'] : ['*', '.', '~'];
  if (!special.includes(ns) && !isIstioDNS1123Label(ns)) out.push(`invalid namespace value "${ns}" in ${isGateway ? 'gateway' : 'sidecar'}`);
  out.push(...checkHostnamePart(host, isGateway));
  return out;
}

/** validateSidecarOrGatewayHostnamePart: a full name or wildcard (not a short name), or an IP on gateways. */
function checkHostnamePart(host: string, isGateway: boolean): string[] {
  const out: string[] = [];
  if (host !== '*' && !host.includes('.')) out.push('short names (non FQDN) are not allowed');
  const err = checkIstioWildcardDomain(host);
  if (err && !(isGateway && isIPAddress(host))) out.push(err);
  const partial = checkPartialWildcard(host);
  if (partial) out.push(partial);
  return out;
}

// === server TLS (validateTLSOptions; also Sidecar ingress) ===


/** validateTLSOptions: certificate sources and the fields each mode needs. */
export function validateServerTLS(ctx: SemanticContext, tls: unknown, path: FieldPath): void {
  if (!isObject(tls)) return;
  const err = (msg: string, at: FieldPath = path) => ctx.error(at, 'SNW0263', msg);
  const warn = (msg: string, at: FieldPath = path) => ctx.warn(at, 'SNW0265', msg);
  const mode = typeof tls.mode === 'string' ? tls.mode : 'PASSTHROUGH';
  const ciphers = asArray(tls.cipherSuites).filter((c): c is string => typeof c === 'string');

  if ((tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') && ciphers.length === 0) {
    warn('TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.', [...path, 'minProtocolVersion']);
  }
  const invalid = new Set<string>();
  const seen = new Set<string>();
  const duplicate = new Set<string>();
  for (const c of ciphers) {
    if (!VALID_CIPHER_SUITES.has(c)) invalid.add(c);
    else if (seen.has(c)) duplicate.add(c);
    else seen.add(c);
  }
  if (invalid.size > 0) warn(`ignoring invalid cipher suites: [${[...invalid].sort().join(' ')}]`, [...path, 'cipherSuites']);
  if (duplicate.size > 0) warn(`ignoring duplicate cipher suites: [${[...duplicate].sort().join(' ')}]`, [...path, 'cipherSuites']);

  const tlsCertificates = asArray(tls.tlsCertificates);
  const credentialNames = asArray(tls.credentialNames);
  if (mode === 'ISTIO_MUTUAL') {
    // The workload certificate is used; any other certificate source is a mistake.
    if (has(tls.serverCertificate)) err('ISTIO_MUTUAL TLS cannot have associated server certificate', [...path, 'serverCertificate']);
    if (has(tls.privateKey)) err('ISTIO_MUTUAL TLS cannot have associated private key', [...path, 'privateKey']);
    if (has(tls.caCertificates)) err('ISTIO_MUTUAL TLS cannot have associated CA bundle', [...path, 'caCertificates']);
    if (tlsCertificates.length > 0) err('ISTIO_MUTUAL TLS cannot have associated tlsCertificates', [...path, 'tlsCertificates']);
    if (has(tls.credentialName)) err('ISTIO_MUTUAL TLS cannot have associated credentialName', [...path, 'credentialName']);
    if (credentialNames.length > 0) err('ISTIO_MUTUAL TLS cannot have associated credentialNames', [...path, 'credentialNames']);
    return;
  }
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (has(tls.caCrl) || has(tls.serverCertificate) || has(tls.privateKey) || has(tls.caCertificates) || tlsCertificates.length > 0 || has(tls.credentialName) || credentialNames.length > 0) {
      warn(`${mode} mode does not use certificates, they will be ignored`);
    }
  }

  let sources = 0;
  if (has(tls.serverCertificate) && has(tls.privateKey)) sources++;
  if (has(tls.credentialName)) sources++;
  if (credentialNames.length > 0) sources++;
  if (tlsCertificates.length > 0) sources++;
  if (sources > 1) err('only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified');

  const terminating = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  // With a credential the certificates are fetched by name; nothing inline is needed.
  if (terminating && (has(tls.credentialName) || credentialNames.length > 0)) return;
  if (terminating) {
    const prefix = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (mode !== 'SIMPLE' && !has(tls.caCertificates)) err(`${prefix} requires a client CA bundle`, [...path, 'caCertificates']);
    if (tlsCertificates.length > 2) warn(`${prefix} can support up to 2 server certificates`, [...path, 'tlsCertificates']);
    const certs = tlsCertificates.length > 0 ? tlsCertificates.map((c, i) => ({ c: asObject(c), at: [...path, 'tlsCertificates', i] })) : [{ c: tls, at: path }];
    for (const { c, at } of certs) {
      if (!has(c.serverCertificate)) err(`${prefix} requires a server certificate`, [...at, 'serverCertificate']);
      if (!has(c.privateKey)) err(`${prefix} requires a private key`, [...at, 'privateKey']);
    }
  }
  if (has(tls.caCrl)) {
    if (has(tls.credentialName)) err('CRL is not supported with credentialName. CRL has to be specified in the credential', [...path, 'caCrl']);
    if (mode === 'SIMPLE') err('CRL is not supported with SIMPLE TLS', [...path, 'caCrl']);
  }
}
