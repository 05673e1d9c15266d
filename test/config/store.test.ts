import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileConfigStore, MemoryConfigStore, type ConfigChange } from '../../src/config/store.js';
import { validateText } from '../../src/config/validate.js';

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
});
