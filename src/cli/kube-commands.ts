/** The Kubernetes commands: kube-inject, install, uninstall, iptables, wait-ready. */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { parseAllDocuments, stringify } from 'yaml';
import { loadInputs } from '../config/load.js';
import { DEFAULT_CONTROL_PLANE_ADDRESS, DEFAULT_IMAGE } from '../kube/defaults.js';
import { injectDocument } from '../kube/inject.js';
import { INSTALL_DEFAULTS, installObjects, installValues, toYaml } from '../kube/install.js';
import { captureProblems, captureRules, cleanupRules, DEFAULT_CAPTURE, type CaptureOptions } from '../kube/iptables.js';
import { printDiagnostics, type Io } from './output.js';

export async function runKubeInject(opts: { filename: string[]; image?: string; controlPlane?: string; nativeSidecars?: boolean; output?: string }, io: Io): Promise<number> {
  const loaded = await loadInputs(opts.filename);
  if (loaded.diagnostics.some((d) => d.level === 'error')) {
    printDiagnostics(io, loaded.diagnostics);
    return 1;
  }
  const settings = { image: opts.image ?? DEFAULT_IMAGE, controlPlane: opts.controlPlane ?? DEFAULT_CONTROL_PLANE_ADDRESS, nativeSidecars: opts.nativeSidecars === true };
  const out: string[] = [];
  for (const doc of loaded.documents) {
    const { object, injected, reason } = injectDocument(doc.value as Record<string, unknown>, settings);
    if (!injected && reason && (object as { kind?: string }).kind && ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob'].includes(String((object as { kind?: string }).kind))) {
      io.err(`${(object as { kind?: string }).kind} ${(object as { metadata?: { name?: string } }).metadata?.name ?? ''}: not injected (${reason})\n`);
    }
    out.push(stringify(object, { lineWidth: 0 }));
  }
  const text = out.join('---\n');
  if (opts.output) await writeFile(opts.output, text);
  else io.out(text);
  return 0;
}

export async function runInstall(opts: { set: string[]; helpValues?: boolean }, io: Io): Promise<number> {
  if (opts.helpValues) {
    for (const [k, v] of Object.entries(INSTALL_DEFAULTS)) io.out(`${k.padEnd(22)} ${v}\n`);
    return 0;
  }
  const values = installValues(opts.set);
  io.out(toYaml(await installObjects(values)));
  return 0;
}

export async function runUninstall(opts: { set: string[] }, io: Io): Promise<number> {
  const values = installValues(opts.set);
  // Only what identifies each object: kubectl delete needs no more, and no key is printed twice.
  const objects = (await installObjects(values)).reverse().map((o) => {
    const meta = o.metadata as { name: string; namespace?: string };
    return { apiVersion: o.apiVersion, kind: o.kind, metadata: { name: meta.name, ...(meta.namespace ? { namespace: meta.namespace } : {}) } };
  });
  io.out(toYaml(objects));
  return 0;
}

export async function runIptables(opts: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  const capture: CaptureOptions = {
    ...DEFAULT_CAPTURE,
    outboundPort: Number(opts.envoyPort),
    inboundPort: Number(opts.inboundCapturePort),
    proxyUid: String(opts.proxyUid),
    proxyGid: String(opts.proxyGid),
    includeOutboundCidrs: String(opts.istioServiceCidr ?? ''),
    excludeOutboundCidrs: String(opts.istioServiceExcludeCidr ?? ''),
    includeInboundPorts: String(opts.istioInboundPorts ?? ''),
    excludeInboundPorts: String(opts.istioLocalExcludePorts ?? ''),
    includeOutboundPorts: String(opts.istioIncludeOutboundPorts ?? ''),
    excludeOutboundPorts: String(opts.istioLocalOutboundPortsExclude ?? ''),
  };
  const problems = captureProblems(capture);
  if (opts.istioInboundInterceptionMode !== 'REDIRECT') problems.push(`-m: "${opts.istioInboundInterceptionMode}" is not supported; use REDIRECT`);
  if (problems.length) {
    io.err(problems.map((p) => `✘ ${p}\n`).join(''));
    return 2;
  }
  const rules = opts.clean ? cleanupRules() : captureRules(capture);
  if (opts.dryRun) {
    io.out(rules);
    return 0;
  }
  const result = await new Promise<{ code: number | null; stderr: string; missing?: boolean }>((resolve) => {
    const child = spawn('iptables-restore', ['--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: null, stderr: err.message, missing: err.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin.end(rules);
  });
  if (result.missing) {
    io.err('✘ iptables-restore is not installed (Debian: apt-get install iptables)\n');
    return 1;
  }
  if (result.code !== 0) {
    io.err(`✘ iptables-restore refused the rules: ${result.stderr.trim()}\n  (needs NET_ADMIN in this network namespace; sinew iptables -n prints the rules)\n`);
    return 1;
  }
  io.out(opts.clean ? 'capture rules removed\n' : `traffic captured: outbound -> ${capture.outboundPort}, inbound -> ${capture.inboundPort}, UID ${capture.proxyUid} left alone\n`);
  return 0;
}

export async function runWaitReady(opts: { port: string; timeout: string }, io: Io): Promise<number> {
  const deadline = Date.now() + Number(opts.timeout) * 1000;
  const ready = () =>
    new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: Number(opts.port), path: '/healthz/ready', timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  while (Date.now() < deadline) {
    if (await ready()) return 0;
    await new Promise((r) => setTimeout(r, 200));
  }
  io.err(`✘ the proxy was not ready on port ${opts.port} within ${opts.timeout} s\n`);
  return 1;
}

/** Parses YAML for tests and other commands (multi-document). */
export function parseYamlDocuments(text: string): unknown[] {
  return parseAllDocuments(text).map((d) => d.toJSON());
}
