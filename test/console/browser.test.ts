/**
 * The console end to end, as a person uses it: `sinew up examples/bookinfo` (free ports),
 * Debian's Chromium through playwright-core opening the URL `sinew up` printed, real traffic
 * through the ingress gateway and productpage's sidecar. The bars:
 *
 * - the Bookinfo graph has exactly the nodes and edges the demo's traffic makes;
 * - a trace opens from an edge and shows spans from every hop;
 * - a weighted-routing action set to 70/30 moves the measured split of real requests to
 *   70/30 ± 5%;
 * - suspend makes the service answer 503 and resume restores it;
 * - an invalid YAML edit is refused with the errors `sinew validate` gives, and nothing changes.
 *
 * A screenshot of every page is kept in test-artifacts/console/ (gitignored). Skipped, with the
 * reason, where no Chromium is installed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { MeshStatus, ReplicaStatus } from '../../src/api/mesh-status.js';
import { bin, configDump, get, repo, reviewsVersion, routesFor, sinew, startMesh, until, viaProxy, type Mesh } from '../mesh/support.js';
import { defaultStaticDir } from '../../src/controlplane/console/server.js';
import { chromiumMissing, launchChromium, type Chromium } from './chromium.js';

const ARTIFACTS = join(repo, 'test-artifacts', 'console');
const REVIEWS = 'reviews.default.svc.cluster.local';

/** What Bookinfo's traffic through the gateway makes in the versioned app graph (Kiali's, with service nodes). */
const BOOKINFO_NODES = [
  'gw:istio-system/istio-ingressgateway',
  'svc:default/details',
  'svc:default/productpage',
  'svc:default/ratings',
  'svc:default/reviews',
  'vapp:default/details/v1',
  'vapp:default/productpage/v1',
  'vapp:default/ratings/v1',
  'vapp:default/reviews/v1',
  'vapp:default/reviews/v2',
  'vapp:default/reviews/v3',
];
const BOOKINFO_EDGES = [
  'gw:istio-system/istio-ingressgateway>svc:default/productpage',
  'svc:default/details>vapp:default/details/v1',
  'svc:default/productpage>vapp:default/productpage/v1',
  'svc:default/ratings>vapp:default/ratings/v1',
  'svc:default/reviews>vapp:default/reviews/v1',
  'svc:default/reviews>vapp:default/reviews/v2',
  'svc:default/reviews>vapp:default/reviews/v3',
  'vapp:default/productpage/v1>svc:default/details',
  'vapp:default/productpage/v1>svc:default/reviews',
  'vapp:default/reviews/v2>svc:default/ratings',
  'vapp:default/reviews/v3>svc:default/ratings',
];

/** Runs `n` calls of `fn`, `concurrency` at a time, results in order. */
async function sample<T>(n: number, fn: () => Promise<T>, concurrency = 6): Promise<T[]> {
  const out: T[] = [];
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < n) {
        started++;
        out.push(await fn());
      }
    }),
  );
  return out;
}

const missing = chromiumMissing();

describe('the console in Chromium against a running Bookinfo', { skip: missing, timeout: 600_000 }, () => {
  let mesh: Mesh;
  let status: MeshStatus;
  let browser: Chromium;
  let page: Page;
  let base: string;
  let productpage: ReplicaStatus;
  let gateway: string;

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  /** A fresh load of the page, as when a person follows a link from elsewhere. */
  const open = async (hash: string) => {
    await page.goto('about:blank');
    await page.goto(`${base}/${hash}`);
    await page.locator('main h1').first().waitFor();
  };
  const reviews = async () => {
    const r = await viaProxy(productpage.proxy.outbound!, 'http://reviews:9080/reviews/0');
    return r.status === 200 ? reviewsVersion(r.body) : String(r.status);
  };
  const reviewsRoutes = (expected: string[]) =>
    until(`productpage's sidecar to hold the reviews routes ${JSON.stringify(expected)}`, async () => {
      const held = routesFor(await configDump(productpage.proxy.admin), REVIEWS);
      if (JSON.stringify(held) !== JSON.stringify(expected)) throw new Error(`it holds ${JSON.stringify(held)}`);
      return true;
    });
  /** Opens the reviews service page and runs one action through its dialog: preview, then apply. */
  async function runAction(button: string, fill: (dialog: ReturnType<Page['locator']>) => Promise<void> = async () => {}): Promise<string> {
    await open('#/service/default/reviews');
    await page.getByRole('button', { name: button, exact: true }).click();
    const dialog = page.locator('dialog[open]');
    await fill(dialog);
    await dialog.getByRole('button', { name: 'Preview' }).click();
    const manifests = dialog.getByLabel('Manifests to apply');
    await dialog.locator('[aria-label="Preview"]').waitFor();
    const yaml = (await manifests.count()) ? await manifests.textContent() : '';
    await shot(`action-${button.toLowerCase().replace(/\W+/g, '-')}`);
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await dialog.getByRole('status').filter({ hasText: 'Applied' }).waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    return yaml ?? '';
  }

  before(async () => {
    assert.ok(defaultStaticDir(), 'the console is not built (dist/console): run npm run build (npm ci does it)');
    mkdirSync(ARTIFACTS, { recursive: true });
    mesh = await startMesh(['examples/bookinfo']);
    try {
      status = await mesh.status();
      productpage = status.workloads.find((w) => w.name === 'productpage-v1')!.replicas[0];
      gateway = status.gateways[0].replicas[0].proxy.inbound!;
      browser = await launchChromium();
      page = await browser.context.newPage();
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  });

  after(async () => {
    await browser?.close();
    await mesh?.stop();
  });

  test('sinew up prints the console URL with the token; status gives the console; the link logs the browser in', async () => {
    const printed = /Console: (http:\/\/localhost:(\d+)\/\?token=([0-9a-f]{64}))/.exec(mesh.log());
    assert.ok(printed, `no console URL in:\n${mesh.log()}`);
    assert.equal(status.controlPlane.console, `127.0.0.1:${printed[2]}`);
    base = `http://localhost:${printed[2]}`;
    assert.equal((await get(`${base}/`)).status, 401, 'without the token the console refuses');
    await page.goto(printed[1]);
    assert.equal(page.url(), `${base}/`, 'the token leaves the address bar');
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // By keyboard: the skip link first, then the sections.
    const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim());
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Skip to content');
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Overview');
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Graph');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Versioned app graph' }).waitFor();
  });

  test('the Bookinfo graph has exactly the nodes and edges its traffic makes', async () => {
    // Enough requests through the gateway for every reviews version to be called.
    const seen = new Set<string>();
    for (let i = 0; i < 300 && seen.size < 3; i++) {
      const r = await get(`http://${gateway}/productpage`);
      assert.equal(r.status, 200);
      const stars = /glyphicon glyphicon-star" style="color: (\w+)/.exec(r.body)?.[1];
      seen.add(stars ?? 'none');
    }
    assert.equal(seen.size, 3, `reviews versions seen: ${[...seen]}`);
    await open('#/graph?type=versionedApp&window=60&refresh=off');
    const drawn = await until('the graph to show every node and edge of the traffic', async () => {
      await page.reload();
      await page.locator('[role=status]').filter({ hasText: 'nodes' }).waitFor();
      const nodes = await page.locator('[data-node]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')!).sort());
      const edges = await page.locator('[data-edge]').evaluateAll((els) => els.map((e) => e.getAttribute('data-edge')!).sort());
      if (edges.length < BOOKINFO_EDGES.length) throw new Error(`${edges.length} edges so far: ${edges.join(' ')}`);
      return { nodes, edges };
    });
    assert.deepEqual(drawn.nodes, BOOKINFO_NODES);
    assert.deepEqual(drawn.edges, BOOKINFO_EDGES);
    await shot('graph-versioned-app');
    for (const type of ['app', 'service', 'workload']) {
      await open(`#/graph?type=${type}&window=300&refresh=off`);
      await page.locator('[data-edge]').first().waitFor();
      await shot(`graph-${type}`);
    }
    await open('#/overview');
    await page.getByRole('heading', { name: 'default' }).waitFor();
    await shot('overview');
  });

  test('a trace opens from an edge and shows spans from every hop', async () => {
    await open('#/graph?type=versionedApp&window=300&refresh=off');
    // By keyboard: the edge's button in the list, then the panel's link.
    await page.locator('li[data-edge="vapp:default/productpage/v1>svc:default/reviews"] button').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('link', { name: 'Traces of this edge' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Traces' }).waitFor();
    const first = page.locator('table[aria-label=Traces] tbody a').first();
    await until('traces of the edge to arrive', async () => {
      if (await first.count()) return true;
      await page.reload();
      await page.getByRole('heading', { name: 'Traces' }).waitFor();
      await page.locator('table[aria-label=Traces], p.muted').first().waitFor();
      return undefined;
    });
    await shot('traces');
    await first.click();
    await page.locator('[data-service]').first().waitFor();
    const spans = await page.locator('[role=listitem][data-service]').evaluateAll((els) => els.map((e) => e.getAttribute('data-service')!));
    const services = new Set(spans);
    // Every hop of a productpage request: gateway -> productpage -> details and reviews (-> ratings from v2 and v3).
    for (const s of ['istio-ingressgateway.istio-system', 'productpage.default', 'details.default', 'reviews.default']) assert.ok(services.has(s), `no span of ${s} in ${[...services]}`);
    // Which reviews served it decides whether ratings was a hop: the span's reporting proxy says.
    await page.locator('[data-service="reviews.default"] button').first().click();
    const reporter = await page.locator('table[aria-label^="Span"] tr', { hasText: 'Reported by' }).locator('td').textContent();
    const version = /reviews-(v\d)/.exec(reporter ?? '')?.[1];
    assert.ok(version, `the reviews span names its proxy: ${reporter}`);
    assert.equal(services.has('ratings.default'), version !== 'v1', `reviews ${version} ${version === 'v1' ? 'does not call' : 'calls'} ratings: ${[...services]}`);
    await shot('trace');
  });

  test('a weighted-routing action at 70/30 moves real requests to 70/30 ± 5%', async () => {
    const yaml = await runAction('Weighted routing', async (dialog) => {
      await dialog.getByLabel('Weight of v1 (%)').fill('70');
      await dialog.getByLabel('Weight of v2 (%)').fill('0');
      await dialog.getByLabel('Weight of v3 (%)').fill('30');
    });
    assert.match(yaml, /sinew\.dev\/console-action: weighted-routing/);
    await reviewsRoutes(['v1(70),v3(30)']);
    const n = 1000;
    const versions = await sample(n, reviews);
    const share = (v: string) => versions.filter((x) => x === v).length / n;
    assert.equal(share('v2'), 0);
    assert.ok(Math.abs(share('v1') - 0.7) <= 0.05, `v1 got ${(share('v1') * 100).toFixed(1)}%`);
    assert.ok(Math.abs(share('v3') - 0.3) <= 0.05, `v3 got ${(share('v3') * 100).toFixed(1)}%`);
    await open('#/service/default/reviews');
    await page.getByRole('heading', { name: 'Actions in force' }).waitFor();
    await shot('service-reviews');
  });

  test('suspend makes the service answer 503; resume restores it', async () => {
    await runAction('Suspend traffic');
    await until('reviews to answer 503', async () => ((await reviews()) === '503' ? true : undefined));
    const suspended = await viaProxy(productpage.proxy.outbound!, 'http://reviews:9080/reviews/0');
    assert.equal(suspended.status, 503);
    assert.equal(suspended.headers['x-sinew-response-flags'], 'FI', 'the caller\'s proxy answers (fault injection)');
    assert.ok((await sample(20, reviews)).every((v) => v === '503'));
    await runAction('Resume traffic');
    await until('reviews to answer again', async () => ((await reviews()) !== '503' ? true : undefined));
    await reviewsRoutes(['v1(70),v3(30)']);
    assert.ok((await sample(20, reviews)).every((v) => v === 'v1' || v === 'v3'), 'the weighted routing in force before the suspension is back');
  });

  test('undo removes what the weighted-routing action created', async () => {
    await open('#/service/default/reviews');
    await page.getByRole('button', { name: 'Undo weighted-routing on reviews' }).click();
    await page.getByRole('status').filter({ hasText: 'Undone weighted-routing' }).waitFor();
    await reviewsRoutes(['-']);
    const res = await sinew(mesh.stateDir, 'get', 'virtualservices', '-o', 'json');
    assert.equal(res.status, 0, res.stderr);
    assert.ok(!res.stdout.includes('"name": "reviews"'), res.stdout);
  });

  test('an invalid YAML edit is refused with sinew validate\'s errors, and the config in force stays', async () => {
    const before = await sinew(mesh.stateDir, 'get', 'virtualservice', 'bookinfo', '-o', 'yaml');
    assert.equal(before.status, 0, before.stderr);
    await open('#/config?kind=VirtualService&namespace=default&name=bookinfo');
    const editor = page.getByLabel('YAML');
    await until('the editor to hold the resource', async () => ((await editor.inputValue()).includes('bookinfo-gateway') ? true : undefined));
    const edited = (await editor.inputValue()).replace(/number: 9080/, 'number: 99999').replace(/exact: \/productpage/, 'exactt: /productpage');
    await editor.fill(edited);
    await page.getByRole('button', { name: 'Apply' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'Refused' });
    await alert.waitFor();
    const shown = await alert.locator('li').allTextContents();
    await shot('config-refused');
    // The same errors `sinew validate` reports for the same text, file name aside.
    const file = join(mesh.stateDir, 'edited.yaml');
    writeFileSync(file, edited);
    const cli = await new Promise<{ status: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [bin, 'validate', '-f', file], { cwd: repo, encoding: 'utf8' }, (err, _out, stderr) => resolve({ status: err ? Number((err as { code?: number }).code) : 0, stderr })),
    );
    assert.equal(cli.status, 1, cli.stderr);
    const cliLines = cli.stderr.split('\n').filter((l) => /^error \[/.test(l)).map((l) => l.replace(file, '<console>'));
    assert.ok(cliLines.length >= 2, cli.stderr);
    assert.deepEqual(shown.filter((l) => l.startsWith('error')), cliLines);
    const after = await sinew(mesh.stateDir, 'get', 'virtualservice', 'bookinfo', '-o', 'yaml');
    assert.equal(after.stdout, before.stdout);
    assert.equal((await get(`http://${gateway}/productpage`)).status, 200);
  });
});

