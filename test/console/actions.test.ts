/**
 * The console's actions as data: what each writes for Bookinfo's reviews, that it validates
 * with `sinew validate`'s code, carries the action's label, and that undo restores the config
 * as it was (or deletes what the action created).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { ACTION_ID_ANNOTATION, ACTION_LABEL, ACTION_PREVIOUS_ANNOTATION, type ActionRequest } from '../../src/api/console.js';
import type { RegistryService } from '../../src/api/registry-snapshot.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { keyOf } from '../../src/config/store.js';
import { validateText } from '../../src/config/validate.js';
import { ActionError, listActions, previewAction, undoPlan } from '../../src/controlplane/console/actions.js';
import { validateForConsole } from '../../src/controlplane/console/validation.js';

const reviews: RegistryService = {
  hostname: 'reviews.default.svc.cluster.local',
  namespace: 'default',
  name: 'reviews',
  source: 'Service',
  ports: [{ port: 9080, protocol: 'HTTP', name: 'http' }],
  resolution: 'EDS',
  location: 'MESH_INTERNAL',
  labels: {},
  endpoints: { '9080': ['v1', 'v2', 'v3'].map((v) => ({ address: '127.0.0.1', port: 1, labels: { app: 'reviews', version: v }, health: 'HEALTHY' as const, workload: { name: `reviews-${v}`, namespace: 'default' } })) },
};

const docs = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJS() as { kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec: Record<string, unknown> });

/** Applies a preview's or undo's YAML to an in-memory list of resources, as the config API would. */
function applied(resources: Resource[], yaml?: string, deleteYaml?: string): Resource[] {
  let out = [...resources];
  if (yaml) {
    const r = validateText('<test>', yaml);
    assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error'), []);
    const keys = new Set(r.resources.map(keyOf));
    out = [...out.filter((x) => !keys.has(keyOf(x))), ...r.resources];
  }
  if (deleteYaml) {
    const gone = new Set(docs(deleteYaml).map((d) => `${d.kind}/default/${d.metadata.name}`));
    out = out.filter((x) => !gone.has(keyOf(x)));
  }
  return out;
}

/** The Service the routes name, so that analyze finds their host. */
const service = validateText('<test>', 'apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  selector: {app: reviews}\n  ports: [{port: 9080, name: http}]\n').resources[0];
let now = Date.UTC(2026, 0, 1);
const ctx = (resources: Resource[]) => ({ resources: [service, ...resources], services: [reviews], now: (now += 1000) });
const preview = (resources: Resource[], request: Omit<ActionRequest, 'namespace' | 'service'>) => previewAction({ namespace: 'default', service: 'reviews', ...request } as ActionRequest, ctx(resources));

describe('actions', () => {
  test('weighted routing writes a VirtualService with the weights and a DestinationRule with every version, labelled and valid', () => {
    const p = preview([], { action: 'weighted-routing', params: { weights: { v1: 70, v3: 30 } } });
    assert.equal(p.summary, 'reviews: v1 70%, v3 30%');
    assert.equal(p.validation.valid, true);
    assert.deepEqual(p.validation.lines, []);
    const [vs, dr] = docs(p.yaml);
    assert.equal(vs.kind, 'VirtualService');
    assert.deepEqual(vs.spec.http, [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 70 }, { destination: { host: 'reviews', subset: 'v3' }, weight: 30 }] }]);
    assert.deepEqual((dr.spec.subsets as { name: string }[]).map((s) => s.name), ['v1', 'v2', 'v3']);
    for (const d of [vs, dr]) {
      assert.equal(d.metadata.labels?.[ACTION_LABEL], 'weighted-routing');
      assert.match(d.metadata.annotations?.[ACTION_ID_ANNOTATION] ?? '', /^weighted-routing-/);
      assert.equal(d.metadata.annotations?.[ACTION_PREVIOUS_ANNOTATION], undefined, 'nothing existed before');
    }
    const tcp = docs(preview([], { action: 'weighted-routing', params: { weights: { v1: 50, v2: 50 }, tcp: true } }).yaml)[0];
    assert.equal(tcp.spec.http, undefined);
    assert.deepEqual((tcp.spec.tcp as { route: unknown[] }[])[0].route.length, 2);
  });

  test('bad forms are refused with what to do', () => {
    assert.throws(() => preview([], { action: 'weighted-routing', params: { weights: { v1: 70, v3: 20 } } }), (e: ActionError) => /add up to 100 \(they add up to 90\)/.test(e.message));
    assert.throws(() => preview([], { action: 'weighted-routing', params: { weights: { v1: 50, v9: 50 } } }), /no version v9; its versions: v1, v2, v3/);
    assert.throws(() => previewAction({ action: 'suspend', namespace: 'default', service: 'nope' }, ctx([])), /no service default\/nope/);
    assert.throws(() => preview([], { action: 'resume' }), /not suspended/);
  });

  test('suspend then resume: a 100% abort 503, and resume puts back what was there', () => {
    const before = applied([], preview([], { action: 'weighted-routing', params: { weights: { v2: 100 } } }).yaml);
    const suspend = preview(before, { action: 'suspend' });
    const [vs] = docs(suspend.yaml);
    assert.deepEqual(vs.spec.http, [{ fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } }, route: [{ destination: { host: 'reviews' } }] }]);
    assert.equal(vs.metadata.labels?.[ACTION_LABEL], 'suspend');
    const suspended = applied(before, suspend.yaml);
    const resume = preview(suspended, { action: 'resume' });
    const restored = applied(suspended, resume.yaml, resume.deleteYaml);
    const vsNow = restored.find((r) => r.kind === 'VirtualService')!;
    assert.deepEqual(vsNow.spec, before.find((r) => r.kind === 'VirtualService')!.spec);
    assert.equal(vsNow.metadata.labels?.[ACTION_LABEL], 'weighted-routing');
  });

  test('faults and timeouts apply to every route in force; a circuit breaker edits the DestinationRule in force', () => {
    const routed = applied([], preview([], { action: 'matching-routing', params: { rules: [{ match: { headers: { 'end-user': { exact: 'jason' } } }, subset: 'v2' }], defaultSubset: 'v1' } }).yaml);
    const fault = docs(preview(routed, { action: 'fault-injection', params: { delay: { percent: 10, fixedDelay: '2s' } } }).yaml)[0];
    assert.deepEqual((fault.spec.http as { fault?: unknown; match?: unknown }[]).map((r) => [!!r.match, r.fault]), [
      [true, { delay: { percentage: { value: 10 }, fixedDelay: '2s' } }],
      [false, { delay: { percentage: { value: 10 }, fixedDelay: '2s' } }],
    ]);
    const timeouts = docs(preview(routed, { action: 'timeouts', params: { timeout: '3s', retries: { attempts: 2, perTryTimeout: '1s' } } }).yaml)[0];
    assert.deepEqual((timeouts.spec.http as { timeout?: string; retries?: unknown }[]).map((r) => [r.timeout, r.retries]), [
      ['3s', { attempts: 2, perTryTimeout: '1s' }],
      ['3s', { attempts: 2, perTryTimeout: '1s' }],
    ]);
    const cb = preview(routed, { action: 'circuit-breaker', params: { maxConnections: 1, http1MaxPendingRequests: 1, consecutive5xxErrors: 3 } });
    assert.equal(cb.validation.valid, true);
    const [dr] = docs(cb.yaml);
    assert.equal(dr.kind, 'DestinationRule');
    assert.deepEqual(dr.spec.trafficPolicy, { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }, outlierDetection: { consecutive5xxErrors: 3 } });
    assert.deepEqual((dr.spec.subsets as { name: string }[]).map((s) => s.name), ['v1', 'v2', 'v3'], 'the subsets in force stay');
    assert.ok(dr.metadata.annotations?.[ACTION_PREVIOUS_ANNOTATION], 'the DestinationRule as it was is kept for undo');
  });

  test('undo restores what an action replaced and deletes what it created; actions in force are listed', () => {
    const first = preview([], { action: 'weighted-routing', params: { weights: { v1: 100 } } });
    const one = applied([], first.yaml);
    const second = preview(one, { action: 'weighted-routing', params: { weights: { v1: 50, v2: 50 } } });
    const two = applied(one, second.yaml);
    const listed = listActions(two);
    // The second replaced the first's VirtualService; the DestinationRule already had every subset.
    assert.deepEqual(listed.map((a) => [a.action, a.service, a.resources.map((r) => r.kind).join(',')]), [
      ['weighted-routing', 'reviews', 'VirtualService'],
      ['weighted-routing', 'reviews', 'DestinationRule'],
    ]);
    assert.ok(listed[0].at > listed[1].at, 'newest first');
    const undoSecond = undoPlan(listed[0].id, two);
    assert.equal(undoSecond.deleteYaml, undefined);
    const back = applied(two, undoSecond.yaml);
    assert.deepEqual(back.find((r) => r.kind === 'VirtualService')!.spec, one.find((r) => r.kind === 'VirtualService')!.spec);
    assert.equal(listActions(back).length, 1);
    const undoFirst = undoPlan(listActions(back)[0].id, back);
    assert.equal(undoFirst.yaml, undefined);
    assert.deepEqual(applied(back, undefined, undoFirst.deleteYaml), []);
    assert.throws(() => undoPlan('weighted-routing-nope', two), /no action weighted-routing-nope is in force/);
  });

  test('the editor\'s validation: sinew validate\'s errors refuse, analyze\'s findings are shown', () => {
    const bad = validateForConsole('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n      weight: -5\n', []);
    assert.equal(bad.valid, false);
    assert.ok(bad.diagnostics.some((d) => d.level === 'error' && d.source?.file === '<console>' && d.source.line > 0));
    assert.ok(bad.lines.every((l) => /^(error|warning|info) \[SNW\d{4}\]/.test(l)), bad.lines.join('\n'));
    const dangling = validateForConsole('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v9}\n', [service]);
    assert.equal(dangling.valid, true);
    const missing = dangling.analysis.find((d) => d.code === 'SNW1001');
    assert.ok(missing, JSON.stringify(dangling.analysis));
    assert.deepEqual([missing.source?.file, missing.source?.line], ['<console>', 8], 'the finding points at the subset\'s line');
  });
});
