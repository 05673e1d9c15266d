/**
 * `sinew create secret tls|generic NAME`, like kubectl's: a Secret made from files, in the
 * layouts Istio reads gateway credentials from, checked as an applied one is, then applied to
 * the running mesh (or printed with --dry-run).
 *
 *   sinew create secret tls httpbin-credential --cert=server.crt --key=server.key [--ca-cert=ca.crt] -n istio-system
 *   sinew create secret generic httpbin-credential-cacert --from-file=cacert=ca.crt -n istio-system
 *   sinew create secret generic creds --from-file=tls.crt=a.crt --from-file=tls.key=a.key --from-literal=note=x
 *
 * A `tls` Secret is `kubernetes.io/tls` with `tls.crt` and `tls.key` (and `ca.crt` with
 * --ca-cert: Istio's MUTUAL servers read the client CA from there).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { stringify } from 'yaml';
import { validateText } from '../config/validate.js';
import { callControlPlane, connectControlPlane } from './client.js';
import { countLevels, plural, printDiagnostics, type Io } from './output.js';
import type { ConnectOptions } from './config-commands.js';

export interface CreateSecretOptions extends ConnectOptions {
  type: 'tls' | 'generic';
  name: string;
  namespace: string;
  cert?: string;
  key?: string;
  caCert?: string;
  fromFile?: string[];
  fromLiteral?: string[];
  dryRun?: boolean;
  output: string;
}

/** `key=path` or `path` (the key is then the file's name), as kubectl's --from-file. */
function fileEntry(spec: string): { key: string; path: string } {
  const eq = spec.indexOf('=');
  return eq > 0 ? { key: spec.slice(0, eq), path: spec.slice(eq + 1) } : { key: basename(spec), path: spec };
}

export async function runCreateSecret(options: CreateSecretOptions, io: Io): Promise<number> {
  const data: Record<string, string> = {};
  const read = async (key: string, path: string): Promise<boolean> => {
    try {
      data[key] = (await readFile(path)).toString('base64');
      return true;
    } catch (err) {
      io.err(`✘ cannot read ${path} (for "${key}"): ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}\n`);
      return false;
    }
  };
  if (options.type === 'tls') {
    if (!options.cert || !options.key) {
      io.err('✘ a tls Secret needs --cert and --key (PEM files); add --ca-cert for the CA that MUTUAL servers verify clients against\n');
      return 2;
    }
    const ok = [await read('tls.crt', options.cert), await read('tls.key', options.key), options.caCert ? await read('ca.crt', options.caCert) : true];
    if (ok.includes(false)) return 1;
  } else {
    for (const spec of options.fromFile ?? []) {
      const { key, path } = fileEntry(spec);
      if (!(await read(key, path))) return 1;
    }
    for (const literal of options.fromLiteral ?? []) {
      const eq = literal.indexOf('=');
      if (eq <= 0) {
        io.err(`✘ --from-literal takes key=value, not "${literal}"\n`);
        return 2;
      }
      data[literal.slice(0, eq)] = Buffer.from(literal.slice(eq + 1), 'utf8').toString('base64');
    }
    if (Object.keys(data).length === 0) {
      io.err('✘ a generic Secret needs at least one --from-file or --from-literal\n');
      return 2;
    }
  }
  const manifest = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: options.name, namespace: options.namespace },
    type: options.type === 'tls' ? 'kubernetes.io/tls' : 'Opaque',
    data,
  };
  const text = JSON.stringify(manifest);
  // The checks an applied Secret gets (a certificate and its key, PEM, the key the certificate's).
  const checked = validateText(`secret ${options.name}`, text);
  printDiagnostics(io, checked.diagnostics);
  const { errors } = countLevels(checked.diagnostics);
  if (errors > 0) {
    io.err(`✘ Secret not created: ${plural(errors, 'error')}\n`);
    return 1;
  }
  if (options.dryRun) {
    io.out(options.output === 'json' ? JSON.stringify(manifest, null, 2) + '\n' : stringify(manifest));
    return 0;
  }
  const cp = await connectControlPlane(options);
  const res = await callControlPlane(cp, '/api/v1/apply', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: text });
  if (res.status !== 200) {
    io.err(`✘ the control plane refused the Secret: ${(res.body as { error?: string }).error ?? res.status}\n`);
    return 1;
  }
  const result = (res.body as { resources: { result: string }[] }).resources[0]?.result ?? 'applied';
  io.out(`secret/${options.name} ${result}\n`);
  return 0;
}
