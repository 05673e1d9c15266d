/**
 * Workload identity in the running mesh, over real processes: `sinew up` with two workloads
 * of their own service accounts and certificates of 6 s (SINEW_WORKLOAD_CERT_TTL, so that
 * renewals come every 3 s), then what a user sees: `sinew status -o json`, `sinew proxy-config
 * <workload> secrets`, the certificates judged by `openssl verify` against `sinew ca root`,
 * renewals that leave the proxies' config and traffic alone, a proxy process presenting
 * another node's credential, and `sinew ca revoke` reaching every proxy.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MeshStatus } from '../../src/api/mesh-status.js';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import type { SecretsDescription } from '../../src/proxy/secrets/mesh-secrets.js';
import { splitPemCertificates } from '../../src/core/pki/certificate-info.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { opensslVerify } from '../ca/support.js';
import { bin, get, repo, sinew, until, viaProxy } from './support.js';

const TTL_SECONDS = 6;
const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

describe('sinew up: every sidecar gets its identity from the mesh CA', { timeout: 180_000 }, () => {
  let up: ChildProcess;
  let stateDir: string;
  let log = '';
  let status: MeshStatus;
  const fetchStatus = async () => JSON.parse((await sinew(stateDir, 'status', '-o', 'json')).stdout) as MeshStatus;
  const replica = (workload: string) => status.workloads.find((w) => w.name === workload)!.replicas[0];
  const certs = async (admin: string) => JSON.parse((await get(`http://${admin}/certs`)).body) as SecretsDescription;
  // `sinew ca <command> --state-dir <dir>`: the state directory belongs to the subcommand.
  const caCommand = (command: string, ...args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((done) => {
      execFile(process.execPath, [bin, 'ca', command, '--state-dir', stateDir, ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => done({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
  const configOf = async (admin: string) => (JSON.parse((await get(`http://${admin}/config_dump`)).body) as { version: string; config: ProxyConfig });

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'sinew-identity-'));
    up = spawn(process.execPath, [bin, 'up', 'test/mesh/fixtures/identity', '--state-dir', stateDir, '--gateway-port', '0'], {
      cwd: repo,
      env: { ...process.env, SINEW_STATE_DIR: stateDir, SINEW_WORKLOAD_CERT_TTL: `${TTL_SECONDS}s` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    up.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    await until('the mesh to come up', async () => (log.includes('the mesh is up') ? true : up.exitCode !== null ? Promise.reject(new Error(log)) : undefined), 120_000);
    status = await until('every proxy\'s certificate in the status', async () => {
      const s = await fetchStatus();
      return [...s.workloads, ...s.gateways].every((w) => w.replicas.every((r) => r.proxy.certificate)) ? s : undefined;
    });
  });

  after(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
    }
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('sinew status -o json gives each replica\'s certificate identity and expiry', () => {
    for (const [workload, sa] of [['echo-v1', 'echo'], ['caller-v1', 'caller']]) {
      const cert = replica(workload).proxy.certificate!;
      assert.equal(cert.identity, spiffe(sa));
      const left = Date.parse(cert.notAfter) - Date.parse(cert.notBefore);
      assert.equal(left, TTL_SECONDS * 1000, 'the lifetime the control plane was given');
    }
    assert.equal(status.gateways[0].replicas[0].proxy.certificate?.identity, 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account');
  });

  test('each sidecar\'s certificate carries its SPIFFE ID and openssl verifies it against `sinew ca root`', async () => {
    const root = await caCommand('root');
    assert.equal(root.status, 0, root.stderr);
    for (const [workload, sa] of [['echo-v1', 'echo'], ['caller-v1', 'caller']]) {
      const shown = await sinew(stateDir, 'proxy-config', workload, 'secrets', '-o', 'json');
      assert.equal(shown.status, 0, shown.stderr);
      const dump = JSON.parse(shown.stdout) as SecretsDescription;
      const mine = dump.secrets.find((s) => s.name === 'default')!;
      assert.equal(mine.identity, spiffe(sa));
      assert.ok(!shown.stdout.includes('PRIVATE KEY'), 'no key leaves the proxy');
      const [leaf, ...chain] = splitPemCertificates(mine.certificateChainPem!);
      const verified = await opensslVerify(stateDir, root.stdout, chain.join(''), leaf);
      assert.equal(verified.code, 0, verified.stderr);
      assert.equal(dump.secrets.find((s) => s.name === 'ROOTCA')?.trustedCaPem, root.stdout);
    }
    const table = await sinew(stateDir, 'proxy-config', 'echo-v1', 'secrets');
    assert.match(table.stdout, /RESOURCE NAME +TYPE +STATUS +VALID CERT +SERIAL NUMBER +NOT AFTER +NOT BEFORE +IDENTITY/);
    assert.match(table.stdout, /default +Cert Chain +ACTIVE +true +[0-9a-f]+ .*spiffe:\/\/cluster\.local\/ns\/default\/sa\/echo/);
    assert.match(table.stdout, /ROOTCA +CA +ACTIVE +true/);
    const yaml = await sinew(stateDir, 'proxy-config', 'echo-v1', 'secrets', '-o', 'yaml');
    assert.match(yaml.stdout, /name: default\n\s+type: Cert Chain/);
  });

  test('certificates renew at half life, twice, while the proxies keep their config and serve', async () => {
    const admin = replica('echo-v1').proxy.admin;
    const outbound = replica('caller-v1').proxy.outbound!;
    const before = await configOf(admin);
    const serials = new Set([(await certs(admin)).secrets.find((s) => s.name === 'default')!.serial]);
    let failures = 0;
    let requests = 0;
    await until('two renewals', async () => {
      const reply = await viaProxy(outbound, 'http://echo:9080/');
      requests++;
      if (reply.status !== 200) failures++;
      const serial = (await certs(admin)).secrets.find((s) => s.name === 'default')?.serial;
      if (serial) serials.add(serial);
      return serials.size >= 3 ? true : undefined;
    }, 30_000);
    assert.equal(failures, 0, `${failures} of ${requests} requests failed during renewals`);
    const after = await configOf(admin);
    assert.equal(after.version, before.version, 'a renewal pushes no new config');
    const sync = (await fetchStatus()).workloads.find((w) => w.name === 'echo-v1')!.replicas[0].proxy.sync;
    assert.equal(sync, 'SYNCED');
  });

  test('a proxy process presenting another node\'s credential gets no config and no certificate', async () => {
    const proxies = join(stateDir, 'proxies');
    const echoToken = join(proxies, readdirSync(proxies).find((f) => f.includes('echo-v1') && f.endsWith('.token'))!);
    const callerNode = JSON.parse(readFileSync(join(proxies, readdirSync(proxies).find((f) => f.includes('caller-v1') && f.endsWith('.json'))!), 'utf8')) as { id: string };
    const nodeFile = join(stateDir, 'impostor.json');
    writeFileSync(nodeFile, JSON.stringify({ ...callerNode, id: `${callerNode.id}-impostor` }));
    const impostor = spawn(process.execPath, [bin, 'proxy', '--xds', status.controlPlane.push, '--node', nodeFile, '--token-file', echoToken, '--admin-port', '0'], { cwd: repo, env: { ...process.env, SINEW_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    impostor.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    impostor.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await until('the refusal', async () => (/refused this proxy/.test(out) ? true : impostor.exitCode !== null ? Promise.reject(new Error(out)) : undefined), 30_000);
      const admin = `127.0.0.1:${/"admin":(\d+)/.exec(out)![1]}`;
      assert.deepEqual((await certs(admin)).secrets, []);
      assert.equal((await get(`http://${admin}/ready`)).status, 503);
    } finally {
      impostor.kill('SIGTERM');
      if (impostor.exitCode === null) await new Promise((r) => impostor.once('exit', r));
    }
  });

  test('sinew ca revoke: every proxy holds the revoked serial in ROOTCA, and a revoked identity\'s renewal is refused', async () => {
    // A certificate that outlives the test (the mesh's own live 6 s, and a revoked serial
    // leaves the pushed list once its certificate has expired).
    const { csrPem } = await generateKeyAndCsr();
    writeFileSync(join(stateDir, 'long.csr'), csrPem);
    const signed = await caCommand('sign', '--csr', join(stateDir, 'long.csr'), '--identity', 'default/echo', '--ttl', '1h', '-o', 'json');
    assert.equal(signed.status, 0, signed.stderr);
    const { serial } = JSON.parse(signed.stdout) as { serial: string };
    const revoked = await caCommand('revoke', serial);
    assert.equal(revoked.status, 0, revoked.stderr);
    const echoAdmin = replica('echo-v1').proxy.admin;
    for (const admin of [echoAdmin, replica('caller-v1').proxy.admin, status.gateways[0].replicas[0].proxy.admin]) {
      await until(`${admin} to hold the revocation`, async () => ((await configOf(admin)).config.secrets?.find((s) => s.name === 'ROOTCA')?.revocations?.serials.some((s) => s.serial === serial) ? true : undefined), 30_000);
    }
    // The whole identity: the CA renews nothing for it, and the echo sidecar says so.
    const blocked = await caCommand('revoke', 'default/echo');
    assert.equal(blocked.status, 0, blocked.stderr);
    await until('the refused renewal', async () => ((await certs(echoAdmin)).lastError?.message.match(/SNW_ERR_CA_REVOKED/) ? true : undefined), 30_000);
    const shown = await sinew(stateDir, 'proxy-config', 'echo-v1', 'secrets');
    assert.match(shown.stdout, /last certificate request failed at .*SNW_ERR_CA_REVOKED/);
  });
});
