/**
 * How `sinew up` starts the control plane: with the V8 flags that keep its memory under a
 * large apply in bounds (src/mesh/launch.ts CONTROL_PLANE_NODE_FLAGS), given to node before
 * the script, where V8 reads them when it sets up the heap.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { CONTROL_PLANE_NODE_FLAGS, MeshLauncher } from '../../src/mesh/launch.js';

describe('the control plane process', () => {
  const launcher = new MeshLauncher({
    sinew: '/opt/sinew/bin/sinew.js',
    stateDir: '/tmp/state',
    host: '127.0.0.1',
    runId: 'run-1',
    controlPlane: { api: 15080, push: 15010, monitoring: 15014, console: 20001 },
    controlPlaneArgs: ['--mesh-config', 'mesh.yaml'],
  });

  test('is started by node with the control plane flags before the script, then the command and its settings', () => {
    const spec = launcher.controlPlane();
    assert.equal(spec.command, process.execPath);
    assert.ok(CONTROL_PLANE_NODE_FLAGS.length > 0);
    assert.deepEqual(spec.args.slice(0, CONTROL_PLANE_NODE_FLAGS.length + 2), [...CONTROL_PLANE_NODE_FLAGS, '/opt/sinew/bin/sinew.js', 'controlplane']);
    assert.deepEqual(spec.args.slice(-2), ['--mesh-config', 'mesh.yaml']);
  });

  test('the flags are ones this node accepts, and they cap the young generation where V8 would grow it', () => {
    // Many objects surviving a while make V8 grow its young generation (to 32 MB with its
    // defaults); node refuses a flag it does not know ("bad option") instead of starting.
    const script = `const v8 = require('node:v8'); const keep = [];
      for (let i = 0; i < 3e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 300000) keep.splice(0, 100000); }
      process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));`;
    const youngBytes = (flags: readonly string[]) => Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }));
    const semiSpaceMb = Number(CONTROL_PLANE_NODE_FLAGS.find((f) => f.startsWith('--max-semi-space-size='))?.split('=')[1]);
    assert.ok(semiSpaceMb > 0, 'the young generation is capped');
    const capped = youngBytes(CONTROL_PLANE_NODE_FLAGS);
    assert.ok(capped <= 2 * semiSpaceMb * 1024 * 1024, `young generation ${capped} bytes`);
    assert.ok(youngBytes([]) > capped, 'without the flags it grows past the cap');
  });
});
