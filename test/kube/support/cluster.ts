/**
 * A real Kubernetes API server (v1.20.2, with etcd) for one test file, from the binaries
 * `scripts/kube-test/setup.sh` builds and caches (`.ci/run` runs it). `startCluster` picks free
 * ports, makes a runtime directory, starts etcd and kube-apiserver, and returns a handle whose
 * `stop()` ends both and removes the directory; call it in `after`. Where the binaries are
 * missing, `clusterSkip` says so and what to run, for `{ skip: clusterSkip }`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const kubeTestHome = process.env.KUBE_TEST_HOME ?? '/var/tmp/kube-test';
const scripts = fileURLToPath(new URL('../../../scripts/kube-test/', import.meta.url));
const bin = join(kubeTestHome, 'bin');

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/** Why the Kubernetes tests cannot run here, or false when they can. */
export const clusterSkip: string | false =
  process.platform !== 'linux'
    ? 'the test API server runs on Linux only'
    : !existsSync(join(bin, 'kube-apiserver'))
      ? `no kube-apiserver in ${bin}: run scripts/kube-test/setup.sh (builds it from Debian's packages, about 6 minutes once)`
      : !onPath('etcd') || !onPath('etcdctl')
        ? 'etcd is not installed: apt-get install etcd-server etcd-client (or run scripts/kube-test/setup.sh)'
        : false;

/** kubectl from the same build, when it was built. */
export const kubectlPath: string | undefined = existsSync(join(bin, 'kubectl')) ? join(bin, 'kubectl') : undefined;

export interface TestCluster {
  /** Runtime directory: kubeconfig, pki/, logs. */
  dir: string;
  kubeconfig: string;
  server: string;
  pki: string;
  apiPort: number;
  etcdPort: number;
  /** Runs the built kubectl against this cluster; rejects with its stderr on a non-zero exit. */
  kubectl(args: readonly string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args as string[], { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface ClusterOptions {
  /** More kube-apiserver flags. */
  apiExtraArgs?: string[];
  withControllerManager?: boolean;
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  if (clusterSkip) throw new Error(clusterSkip);
  const dir = await mkdtemp(join(tmpdir(), 'sinew-kube-'));
  const [apiPort, etcdPort, etcdPeerPort, kcmPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const env = {
    ...process.env,
    R: dir,
    BIN: bin,
    API_PORT: String(apiPort),
    ETCD_PORT: String(etcdPort),
    ETCD_PEER_PORT: String(etcdPeerPort),
    KCM_PORT: String(kcmPort),
    API_EXTRA_ARGS: (options.apiExtraArgs ?? []).join(' '),
    WITH_KCM: options.withControllerManager ? '1' : '0',
    // A loaded machine: the server may take a while.
    START_TIMEOUT_S: '150',
  };
  const stop = async () => {
    await run('bash', [join(scripts, 'stop-cluster.sh')], env, 30_000).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('bash', [join(scripts, 'start-cluster.sh')], env, 180_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const kubeconfig = join(dir, 'kubeconfig');
  return {
    dir,
    kubeconfig,
    server: `https://127.0.0.1:${apiPort}`,
    pki: join(dir, 'pki'),
    apiPort,
    etcdPort,
    kubectl(args, input) {
      if (!kubectlPath) return Promise.reject(new Error(`no kubectl in ${bin}: run scripts/kube-test/setup.sh`));
      return run(kubectlPath, ['--kubeconfig', kubeconfig, ...args], process.env, 60_000, input);
    },
    stop,
  };
}
