import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileConfigStore, MemoryConfigStore, writeAtomicParts, type ConfigChange } from '../../src/config/store.js';
import { SeededRandom } from '../../src/core/random.js';
import { validateText } from '../../src/config/validate.js';
import type { Resource } from '../../src/api/resources/meta.js';

const service = (name: string, port = 9080) =>
  validateText('t.yaml', `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n  selector: {app: ${name}}\n  ports: [{name: http, port: ${port}}]\n`).resources[0];

describe('config store', () => {
  test('apply bumps the revision once per change and notifies watchers', async () => {
    const store = new MemoryConfigStore({ now: () => 42 });
    const seen: ConfigChange[] = [];
    store.watch((c) => seen.push(c));
    const change = await store.apply([service('a'), service('b')]);
    assert.equal(change.revision, 1);
    assert.equal(store.revision, 1);
    assert.deepEqual(store.list('Service').map((r) => r.metadata.name), ['a', 'b']);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].applied.length, 2);
  });

  test('re-applying identical content changes nothing and notifies nobody', async () => {
    const store = new MemoryConfigStore();
    let calls = 0;
    store.watch(() => calls++);
    await store.apply([service('a')]);
    const again = await store.apply([service('a')]);
    assert.equal(again.revision, 1);
    assert.equal(again.applied.length, 0);
    assert.equal(calls, 1);
    const changed = await store.apply([service('a', 8080)]);
    assert.equal(changed.revision, 2);
  });

  test('delete removes only what exists; history is bounded', async () => {
    const store = new MemoryConfigStore({ historyLimit: 3 });
    for (let i = 0; i < 5; i++) await store.apply([service(`s${i}`)]);
    const del = await store.delete([{ kind: 'Service', namespace: 'default', name: 's1' }, { kind: 'Service', namespace: 'default', name: 'nope' }]);
    assert.equal(del.deleted.length, 1);
    assert.equal(store.get('Service', 'default', 's1'), undefined);
    assert.deepEqual(store.history().map((c) => c.revision), [4, 5, 6]);
  });

  test('the file backend survives a restart and leaves no temporary files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sinew-store-'));
    try {
      const first = await FileConfigStore.open(dir);
      await first.apply([service('reviews'), service('ratings')]);
      await first.delete([{ kind: 'Service', namespace: 'default', name: 'ratings' }]);
      const reopened = await FileConfigStore.open(dir);
      assert.equal(reopened.revision, 2);
      assert.deepEqual(reopened.list().map((r) => r.metadata.name), ['reviews']);
      assert.ok(Object.isFrozen(reopened.list()[0].spec), 'resources read back are frozen');
      const files = await readdir(dir);
      assert.ok(!files.some((f) => f.endsWith('.tmp')), `no temp files left: ${files.join(', ')}`);
      assert.equal((await readdir(join(dir, 'history'))).length, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a state of many resources reads back whole, one resource at a time; one made invalid by hand is left out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sinew-store-'));
    try {
      const first = await FileConfigStore.open(dir);
      await first.apply(Array.from({ length: 300 }, (_, i) => service(`svc-${i}`, 9000 + i)));
      const written = first.list();
      const state = JSON.parse(await readFile(join(dir, 'resources.json'), 'utf8')) as { revision: number; resources: { metadata: { name: string }; spec: { ports: { port: unknown }[] } }[] };
      state.resources[150]!.spec.ports[0]!.port = 'not a port';
      const broken = state.resources[150]!.metadata.name;
      await writeFile(join(dir, 'resources.json'), JSON.stringify(state));
      const reopened = await FileConfigStore.open(dir);
      assert.equal(reopened.revision, 1);
      const content = (rs: readonly Resource[]) => rs.map((r) => ({ metadata: r.metadata, spec: r.spec }));
      assert.deepEqual(content(reopened.list()), content(written.filter((r) => r.metadata.name !== broken)));
      // Positions are those of the resources' JSON documents, one per line pair, as when joined.
      assert.equal(reopened.get('Service', 'default', 'svc-1')?.source?.line, 3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a state written in pieces holds every piece in order, multi-byte characters and pieces larger than the write buffer too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sinew-store-'));
    try {
      // Pieces of every size around the 1 MiB write buffer, with characters of 2, 3 and 4
      // bytes falling across its boundaries, and one piece larger than the buffer.
      const random = new SeededRandom(7);
      const alphabet = ['a', 'é', '→', '🜲', '\n'];
      const parts: string[] = [];
      for (let total = 0; total < 3.5 * 1024 * 1024; ) {
        const length = Math.floor(random.next() * 300_000);
        let part = '';
        for (let i = 0; i < length; i++) part += alphabet[Math.floor(random.next() * alphabet.length)];
        parts.push(part);
        total += Buffer.byteLength(part);
      }
      parts.splice(3, 0, '→'.repeat(500_000));
      const path = join(dir, 'state.json');
      await writeAtomicParts(path, parts);
      assert.equal(await readFile(path, 'utf8'), parts.join(''));
      await writeAtomicParts(path, ['short']);
      assert.equal(await readFile(path, 'utf8'), 'short', 'a later write replaces the whole file');
      assert.deepEqual(await readdir(dir), ['state.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const parse = (yaml: string): Resource => {
  const result = validateText('t.yaml', yaml);
  assert.deepEqual(result.diagnostics.filter((d) => d.level === 'error'), []);
  return result.resources[0];
};

/** A clock the test moves by hand. */
function manualClock(start = Date.parse('2025-03-01T10:00:00Z')) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('config store: what the API server stamps', () => {
  test('create stamps creationTimestamp, uid, generation 1 and the resourceVersion of the change', async () => {
    const clock = manualClock();
    const store = new MemoryConfigStore({ now: clock.now });
    await store.apply([service('reviews')]);
    const meta = store.get('Service', 'default', 'reviews')!.metadata;
    assert.equal(meta.creationTimestamp, '2025-03-01T10:00:00.000Z');
    assert.match(String(meta.uid), UUID);
    assert.equal(meta.generation, 1);
    assert.equal(meta.resourceVersion, '1');
  });

  test('an update keeps creationTimestamp and uid; generation moves with the spec only, resourceVersion with any change', async () => {
    const clock = manualClock();
    const store = new MemoryConfigStore({ now: clock.now });
    await store.apply([service('reviews')]);
    const created = store.get('Service', 'default', 'reviews')!.metadata;
    clock.advance(60_000);
    await store.apply([service('reviews', 8080)]);
    const specChanged = store.get('Service', 'default', 'reviews')!.metadata;
    assert.equal(specChanged.creationTimestamp, created.creationTimestamp);
    assert.equal(specChanged.uid, created.uid);
    assert.equal(specChanged.generation, 2);
    assert.equal(specChanged.resourceVersion, '2');
    await store.apply([parse('apiVersion: v1\nkind: Service\nmetadata: {name: reviews, labels: {team: books}}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 8080}]\n')]);
    const labelled = store.get('Service', 'default', 'reviews')!.metadata;
    assert.equal(labelled.generation, 2, 'a metadata change leaves generation alone');
    assert.equal(labelled.resourceVersion, '3');
    assert.deepEqual(labelled.labels, { team: 'books' });
  });

  test('what a client sends for the stamped fields is replaced on create and ignored when comparing', async () => {
    const store = new MemoryConfigStore({ now: manualClock().now, newUid: () => 'uid-from-store' });
    const forged = parse(
      'apiVersion: v1\nkind: Service\nmetadata: {name: reviews, uid: forged, creationTimestamp: "2000-01-01T00:00:00Z", generation: 7, resourceVersion: "99"}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n',
    );
    await store.apply([forged]);
    const stored = store.get('Service', 'default', 'reviews')!;
    assert.deepEqual(
      [stored.metadata.uid, stored.metadata.creationTimestamp, stored.metadata.generation, stored.metadata.resourceVersion],
      ['uid-from-store', '2025-03-01T10:00:00.000Z', 1, '1'],
    );
    // `sinew get -o yaml` output applied again (stamps and all, keys in another order) is unchanged.
    const again = await store.apply([parse(JSON.stringify({ spec: stored.spec, metadata: stored.metadata, kind: 'Service', apiVersion: 'v1' }))]);
    assert.equal(again.applied.length, 0);
    assert.equal(store.revision, 1);
  });

  test('a later apply is younger even when the clock has not moved or went back', async () => {
    const clock = manualClock();
    const store = new MemoryConfigStore({ now: clock.now });
    await store.apply([service('b')]);
    await store.apply([service('a')]);
    clock.advance(-5_000);
    await store.apply([service('c')]);
    const times = ['b', 'a', 'c'].map((n) => Date.parse(String(store.get('Service', 'default', n)!.metadata.creationTimestamp)));
    assert.ok(times[0] < times[1] && times[1] < times[2], times.join(' < '));
  });

  test('deleting and creating again gives a new uid and creation time', async () => {
    const clock = manualClock();
    const store = new MemoryConfigStore({ now: clock.now });
    await store.apply([service('reviews')]);
    const first = store.get('Service', 'default', 'reviews')!.metadata;
    await store.delete([{ kind: 'Service', namespace: 'default', name: 'reviews' }]);
    clock.advance(1000);
    await store.apply([service('reviews')]);
    const second = store.get('Service', 'default', 'reviews')!.metadata;
    assert.notEqual(second.uid, first.uid);
    assert.equal(second.creationTimestamp, '2025-03-01T10:00:01.000Z');
  });

  test('the file backend keeps the stamps across a restart, and stamps state written before stamping existed once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sinew-store-stamps-'));
    try {
      const clock = manualClock();
      const first = await FileConfigStore.open(dir, { now: clock.now });
      await first.apply([service('reviews')]);
      const before = first.get('Service', 'default', 'reviews')!.metadata;
      clock.advance(10_000);
      const reopened = await FileConfigStore.open(dir, { now: clock.now });
      assert.deepEqual(reopened.get('Service', 'default', 'reviews')!.metadata, before);
      // A new resource after the restart is younger than the ones from before it.
      await reopened.apply([service('ratings')]);
      assert.equal(reopened.get('Service', 'default', 'ratings')!.metadata.creationTimestamp, '2025-03-01T10:00:10.000Z');

      // Old state: no stamps at all.
      const state = JSON.parse(await readFile(join(dir, 'resources.json'), 'utf8')) as { revision: number; resources: { metadata: Record<string, unknown> }[] };
      for (const r of state.resources) r.metadata = { name: r.metadata.name, namespace: r.metadata.namespace };
      await writeFile(join(dir, 'resources.json'), JSON.stringify(state));
      const migrated = await FileConfigStore.open(dir, { now: clock.now });
      const stamped = migrated.get('Service', 'default', 'reviews')!.metadata;
      assert.match(String(stamped.uid), UUID);
      assert.equal(stamped.resourceVersion, String(state.revision));
      const stable = await FileConfigStore.open(dir, { now: () => clock.now() + 3_600_000 });
      assert.deepEqual(stable.get('Service', 'default', 'reviews')!.metadata, stamped, 'stamped once, then kept');
      assert.equal(stable.revision, state.revision);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
