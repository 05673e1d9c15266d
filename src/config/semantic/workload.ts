/**
 * Sinew Workload rules: a runnable command, valid and unique ports, replicas of 0 or more,
 * environment variables the runner can set, and a readiness probe the runner can carry out
 * (it can only probe ports the workload declares, because it maps each containerPort to the
 * replica's real port). Port and probe rules follow Kubernetes' container validation
 * (kubernetes pkg/apis/core/validation: validateContainerPorts, validateProbe).
 */
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import { checkIanaPortName } from './kubernetes.js';
import { asArray, asObject, checkHeaderName, checkPort, isObject } from './rules.js';

/** Variables the embedded runner gives every replica (DESIGN.md "Contracts"). */
/**
 * What the embedded runner sets in every app's environment (src/mesh/launch.ts), replacing what
 * a Workload's env says: where to listen, who it is, the proxy variables pointing at its
 * sidecar, and the marker that finds a killed runner's processes. Beside them, PORT_<n> for
 * each of the Workload's containerPorts.
 */
export const RUNNER_ENV = [
  'PORT', 'HOST', 'SINEW_WORKLOAD', 'SINEW_NAMESPACE', 'SINEW_MESH_RUN',
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'grpc_proxy', 'NO_PROXY', 'no_proxy',
] as const;

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Sinew Workload rules. */
export function validateWorkload(spec: unknown, ctx: SemanticContext): void {
  const w = asObject(spec);

  // command: the program and its fixed arguments.
  if (Array.isArray(w.command)) {
    if (w.command.length === 0) ctx.error(['spec', 'command'], 'SNW0340', 'command must not be empty: name the program to run');
    else if (w.command[0] === '') ctx.error(['spec', 'command', 0], 'SNW0340', 'command[0] must name the program to run');
  }

  if (w.replicas !== undefined && (typeof w.replicas !== 'number' || !Number.isInteger(w.replicas) || w.replicas < 0)) {
    ctx.error(['spec', 'replicas'], 'SNW0343', `replicas must be an integer of 0 or more, got ${String(w.replicas)}`);
  }

  if (typeof w.serviceAccount === 'string' && (w.serviceAccount.length > 253 || !DNS1123_SUBDOMAIN.test(w.serviceAccount))) {
    ctx.error(['spec', 'serviceAccount'], 'SNW0347', `serviceAccount "${w.serviceAccount}" must be a lower-case DNS-1123 subdomain`);
  }
  if (w.workingDir === '') ctx.error(['spec', 'workingDir'], 'SNW0340', 'workingDir must not be empty; leave it out for the default');

  // Ports: numbers and names the Services and the probe refer to.
  const portNumbers = new Set<number>();
  const portNames = new Set<string>();
  const seen = new Set<string>();
  asArray(w.ports).forEach((raw, i) => {
    if (!isObject(raw)) return;
    const path = ['spec', 'ports', i];
    const err = checkPort(raw.containerPort);
    if (err) ctx.error([...path, 'containerPort'], 'SNW0341', `containerPort: ${err}`);
    if (typeof raw.containerPort === 'number') {
      const key = `${raw.containerPort}/${typeof raw.protocol === 'string' ? raw.protocol : 'TCP'}`;
      if (seen.has(key)) ctx.error([...path, 'containerPort'], 'SNW0341', `containerPort ${key} is declared twice`);
      seen.add(key);
      portNumbers.add(raw.containerPort);
    }
    if (typeof raw.name === 'string') {
      const nameErr = checkIanaPortName(raw.name);
      if (nameErr) ctx.error([...path, 'name'], 'SNW0341', nameErr);
      if (portNames.has(raw.name)) ctx.error([...path, 'name'], 'SNW0341', `port name "${raw.name}" is used twice`);
      portNames.add(raw.name);
    }
  });

  // Environment.
  const envNames = new Set<string>();
  asArray(w.env).forEach((raw, i) => {
    if (!isObject(raw) || typeof raw.name !== 'string') return;
    const path = ['spec', 'env', i, 'name'];
    if (raw.name === '' || raw.name.includes('=')) {
      ctx.error(path, 'SNW0344', `env name "${raw.name}" must be non-empty and must not contain "="`);
      return;
    }
    if (envNames.has(raw.name)) ctx.error(path, 'SNW0344', `env name "${raw.name}" is set twice`);
    envNames.add(raw.name);
    const port = /^PORT_(\d+)$/.exec(raw.name);
    if ((RUNNER_ENV as readonly string[]).includes(raw.name)) {
      ctx.warn(path, 'SNW0345', `${raw.name} is set by the embedded runner for each replica; this value is replaced`);
    } else if (port && portNumbers.has(Number(port[1]))) {
      ctx.warn(path, 'SNW0345', `${raw.name} is set by the embedded runner for each replica (where containerPort ${port[1]} listens); this value is replaced`);
    }
  });

  if (isObject(w.readinessProbe)) checkProbe(w.readinessProbe, ['spec', 'readinessProbe'], portNumbers, portNames, ctx);
}

function checkProbe(probe: Record<string, unknown>, base: FieldPath, numbers: Set<number>, names: Set<string>, ctx: SemanticContext): void {
  for (const field of ['initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'failureThreshold', 'successThreshold']) {
    const v = probe[field];
    if (typeof v === 'number' && v < 0) ctx.error([...base, field], 'SNW0346', `${field} must be non-negative (0 means the default)`);
  }
  const handlers = ['httpGet', 'tcpSocket'].filter((h) => probe[h] !== undefined);
  if (handlers.length !== 1) {
    ctx.error(base, 'SNW0325', handlers.length === 0 ? 'readinessProbe must set httpGet or tcpSocket' : 'readinessProbe may set only one of httpGet and tcpSocket');
  }
  for (const handler of handlers) {
    const h = asObject(probe[handler]);
    const path = [...base, handler, 'port'];
    const port = h.port;
    if (typeof port === 'number') {
      const err = checkPort(port);
      if (err) ctx.error(path, 'SNW0325', err);
      else if (!numbers.has(port)) {
        ctx.error(path, 'SNW0342', `probe port ${port} is not a containerPort of this Workload; declare it in spec.ports`);
      }
    } else if (typeof port === 'string') {
      if (!names.has(port)) ctx.error(path, 'SNW0342', `probe port "${port}" does not name a port of this Workload`);
    }
    if (handler === 'httpGet') {
      if (typeof h.path === 'string' && h.path !== '' && !h.path.startsWith('/')) {
        ctx.error([...base, handler, 'path'], 'SNW0325', `probe path "${h.path}" must start with "/"`);
      }
      asArray(h.httpHeaders).forEach((hdr, i) => {
        const name = asObject(hdr).name;
        const err = typeof name === 'string' ? checkHeaderName(name) : undefined;
        if (err) ctx.error([...base, handler, 'httpHeaders', i, 'name'], 'SNW0325', err);
      });
    }
  }
}
