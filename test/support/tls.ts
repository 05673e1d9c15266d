/**
 * Certificates for tests, made by openssl (an independent implementation, as CI installs it):
 * a CA, and server certificates it signs for the names asked for. Each call makes fresh keys.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  cert: string;
  key: string;
}

function run(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 30_000 }, (err, _stdout, stderr) => (err ? reject(new Error(`openssl ${args[0]} failed: ${stderr || err.message}`)) : resolve()));
  });
}

/** A self-signed CA (EC P-256). */
export async function makeCa(commonName = 'Sinew test CA'): Promise<Pem> {
  const dir = await mkdtemp(join(tmpdir(), 'sinew-tls-'));
  try {
    await run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${commonName}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    return { cert: await readFile(join(dir, 'ca.crt'), 'utf8'), key: await readFile(join(dir, 'ca.key'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A self-signed certificate for `names` (DNS SANs; the first is the CN) that is its own CA, as
 * the Gateway API suite's MustCreateSelfSignedCertSecret makes: clients trust it directly.
 */
export async function makeSelfSignedCertificate(names: string[]): Promise<Pem> {
  const dir = await mkdtemp(join(tmpdir(), 'sinew-tls-'));
  try {
    await run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tls.key', '-out', 'tls.crt', '-days', '2', '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`, '-addext', 'basicConstraints=critical,CA:TRUE'], dir);
    return { cert: await readFile(join(dir, 'tls.crt'), 'utf8'), key: await readFile(join(dir, 'tls.key'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A server certificate for `names` (DNS SANs, URI SANs for those with a scheme: `spiffe://...`; the first is the CN), signed by `ca`. */
export function makeServerCertificate(ca: Pem, names: string[]): Promise<Pem> {
  return makeLeaf(ca, names, 'serverAuth');
}

/** A client certificate for `name` (CN and DNS SAN), signed by `ca`, as curl --cert presents it. */
export function makeClientCertificate(ca: Pem, name: string): Promise<Pem> {
  return makeLeaf(ca, [name], 'clientAuth');
}

async function makeLeaf(ca: Pem, names: string[], usage: 'serverAuth' | 'clientAuth'): Promise<Pem> {
  const dir = await mkdtemp(join(tmpdir(), 'sinew-tls-'));
  try {
    await writeFile(join(dir, 'ca.crt'), ca.cert);
    await writeFile(join(dir, 'ca.key'), ca.key);
    await writeFile(join(dir, 'ext.cnf'), `subjectAltName=${names.map((n) => (n.includes('://') ? `URI:${n}` : `DNS:${n}`)).join(',')}\nextendedKeyUsage=${usage}\n`);
    await run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${names[0]}`], dir);
    await run(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', 'ext.cnf'], dir);
    return { cert: await readFile(join(dir, 'tls.crt'), 'utf8'), key: await readFile(join(dir, 'tls.key'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** base64 of a string, as a Secret's `data` holds it. */
export const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
