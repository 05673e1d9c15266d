/**
 * Hostile input for the loader: every case must come back as a coded diagnostic, quickly and
 * in bounded memory, never as a crash, a hang or a stack overflow.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseText, defaultLoadLimits } from '../../src/config/load.js';
import { validateInputs, validateText } from '../../src/config/validate.js';
import type { Diagnostic } from '../../src/api/diagnostics.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-hostile-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const codes = (ds: readonly Diagnostic[]) => ds.map((d) => d.code);
const errorsOf = (ds: readonly Diagnostic[]) => ds.filter((d) => d.level === 'error');

/**
 * Runs `fn` and fails when it costs more than `ms` of this process's CPU time: a runaway
 * (quadratic or unbounded) reader shows up as a failure, not a stuck run. CPU time rather than
 * wall time, because the suite shares its cores with other test files and wall time then
 * measures the machine's load, not the reader (a reader that blocks instead is caught by the
 * test timeout).
 */
async function within<T>(ms: number, fn: () => T | Promise<T>): Promise<T> {
  const started = process.cpuUsage();
  const out = await fn();
  const used = process.cpuUsage(started);
  const took = (used.user + used.system) / 1000;
  assert.ok(took < ms, `took ${took.toFixed(0)} ms of CPU, over the ${ms} ms bound`);
  return out;
}

function writeFile(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

function cli(args: string[], input?: string) {
  const run = spawnSync(process.execPath, ['bin/sinew.js', ...args], { cwd: repoRoot, input, encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const service = (name: string) => `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports:\n  - port: 9080\n`;

describe('bytes that are not text', () => {
  test('random binary with NUL bytes is SNW0002', async () => {
    // A fixed linear congruential sequence: the same "random" bytes on every run.
    const bytes = new Uint8Array(4096);
    let x = 12345;
    for (let i = 0; i < bytes.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      bytes[i] = i % 7 === 0 ? 0 : x >>> 24;
    }
    const result = await within(2000, () => validateInputs([writeFile('blob.yaml', bytes)]));
    assert.deepEqual(codes(result.diagnostics), ['SNW0002']);
    assert.equal(result.resources.length, 0);
  });

  test('NUL bytes inside otherwise valid UTF-8 are SNW0002 with their position', () => {
    const result = parseText('nul.yaml', Buffer.from('a: 1\nb: x\u0000y\n'));
    assert.deepEqual(codes(result.diagnostics), ['SNW0002']);
    assert.match(result.diagnostics[0].message, /NUL/);
    assert.deepEqual(result.diagnostics[0].source, { file: 'nul.yaml', line: 2, column: 5 });
  });

  test('invalid UTF-8 (0xC3 0x28) is SNW0002', async () => {
    const path = writeFile('latin.yaml', new Uint8Array([...Buffer.from('kind: '), 0xc3, 0x28, 0x0a]));
    const result = await validateInputs([path]);
    assert.deepEqual(codes(result.diagnostics), ['SNW0002']);
    assert.match(result.diagnostics[0].message, /UTF-8/);
  });
});

describe('resource exhaustion', () => {
  test('a billion-laughs alias bomb (9 levels of 9 aliases) is SNW0005', async () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    const names = 'abcdefghi';
    for (let i = 1; i < names.length; i++) {
      lines.push(`${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(',')}]`);
    }
    const before = process.memoryUsage().rss;
    const result = await within(2000, () => validateText('bomb.yaml', lines.join('\n') + '\n'));
    assert.deepEqual(codes(result.diagnostics), ['SNW0005']);
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'the bomb was not expanded');
  });

  const deep = 10_000;
  const cases: Record<string, () => string> = {
    'flow sequences [[[...]]]': () => '['.repeat(deep) + ']'.repeat(deep),
    'flow mappings {a: {a: ...}}': () => '{a: '.repeat(deep) + '1' + '}'.repeat(deep),
    'block sequences - - - - on one line': () => '- '.repeat(deep) + 'x\n',
    'block sequences, one dash per line': () => Array.from({ length: 2000 }, (_, i) => ' '.repeat(i) + '-').join('\n') + '\n',
    'explicit keys ? ? ? ?': () => '? '.repeat(deep) + 'x\n',
    'indented maps (2 000 deep: 10 000 does not fit the size limit)': () =>
      Array.from({ length: 2000 }, (_, i) => ' '.repeat(i) + 'a:').join('\n') + ' 1\n',
    'sequences of maps - a: / - b:': () => Array.from({ length: 2000 }, (_, i) => '  '.repeat(i) + '- a:').join('\n') + ' 1\n',
    'flow nesting behind a plain scalar holding a quote': () => 'a: x"\nb: ' + '['.repeat(deep) + ']'.repeat(deep) + '\n',
  };
  for (const [name, make] of Object.entries(cases)) {
    test(`nesting ${name} is SNW0006, not a stack overflow`, async () => {
      const result = await within(3000, () => validateText('deep.yaml', make()));
      assert.deepEqual(codes(result.diagnostics), ['SNW0006']);
      assert.match(result.diagnostics[0].message, /deeper than 128 levels/);
    });
  }

  test('indented maps 10 000 deep are SNW0006 once the size limit allows them', async () => {
    // 10 000 levels of one-space indentation weigh 50 MB, over the default 16 MiB; raise the
    // limit to reach the nesting check itself.
    const text = Array.from({ length: deep }, (_, i) => ' '.repeat(i) + 'a:').join('\n') + ' 1\n';
    const limits = { ...defaultLoadLimits, maxBytes: 64 * 1024 * 1024 };
    const result = await within(5000, () => parseText('deep.yaml', text, limits));
    assert.deepEqual(codes(result.diagnostics), ['SNW0006']);
    const at10k = await within(5000, () => parseText('deep.yaml', text));
    assert.deepEqual(codes(at10k.diagnostics), ['SNW0003']);
  });

  test('60 000 keys in one mapping parse in linear time (duplicate-key check)', async () => {
    // The YAML library's own uniqueKeys check compares each key with all earlier ones:
    // 40 000 keys took 30 s with it, and 60 000 would take a minute.
    const text = Array.from({ length: 60_000 }, (_, i) => `k${i}: 1`).join('\n') + '\nk5: again\n';
    const result = await within(10_000, () => parseText('keys.yaml', text));
    assert.deepEqual(result.diagnostics.map((d) => [d.code, d.message, d.source?.line]), [['SNW0004', 'Map keys must be unique', 60_001]]);
  });

  test('50 000 unknown fields are all reported, in linear time', async () => {
    // Each diagnostic looks up its field's position; a linear search per lookup made this quadratic.
    const text = service('wide') + Array.from({ length: 50_000 }, (_, i) => `k${i}: 1`).join('\n') + '\n';
    const result = await within(10_000, () => validateText('wide.yaml', text));
    assert.equal(result.diagnostics.length, 50_000);
    assert.ok(result.diagnostics.every((d) => d.code === 'SNW0104'));
    assert.deepEqual(result.diagnostics.at(-1)?.source, { file: 'wide.yaml', line: 50_007, column: 1 });
  });

  test('a long key does not count as nesting', () => {
    const result = validateText('long.yaml', service('ok').replace('name: ok', `name: ok\n  annotations:\n    ${'k'.repeat(400)}: v`));
    assert.deepEqual(errorsOf(result.diagnostics), []);
    assert.equal(result.resources.length, 1);
  });

  test('more documents than the limit is SNW0003 before they are built', async () => {
    const result = await within(3000, () => parseText('many.yaml', 'a: 1\n---\n'.repeat(20_000)));
    assert.deepEqual(codes(result.diagnostics), ['SNW0003']);
  });

  test('a 100 MB file is SNW0003 without being read', async () => {
    const path = join(dir, 'huge.yaml');
    writeFileSync(path, service('huge'));
    truncateSync(path, 100 * 1024 * 1024);
    try {
      const rssBefore = process.memoryUsage().rss;
      const result = await within(2000, () => validateInputs([path]));
      const grew = process.memoryUsage().rss - rssBefore;
      assert.deepEqual(codes(result.diagnostics), ['SNW0003']);
      assert.match(result.diagnostics[0].message, /100\.0 MiB, over the 16\.0 MiB limit/);
      assert.ok(grew < 20 * 1024 * 1024, `rss grew by ${(grew / 1024 / 1024).toFixed(1)} MiB: the file was read`);
    } finally {
      rmSync(path, { force: true });
    }
  });

  test('garbage that fails on every line reports a bounded number of syntax errors', () => {
    const text = Array.from({ length: 300 }, (_, i) => '\t'.repeat(i) + 'a:').join('\n') + '\n';
    const result = parseText('tabs.yaml', text);
    assert.ok(result.diagnostics.length <= 21, `${result.diagnostics.length} diagnostics`);
    assert.ok(result.diagnostics.every((d) => d.code === 'SNW0004'));
    assert.match(result.diagnostics.at(-1)!.message, /more syntax errors/);
  });
});

describe('empty and odd documents', () => {
  test('an empty file is warning SNW0007', async () => {
    const result = await validateInputs([writeFile('empty.yaml', '')]);
    assert.deepEqual(result.diagnostics.map((d) => [d.level, d.code]), [['warning', 'SNW0007']]);
  });

  test('an empty file passes `sinew validate` with exit 0 and the warning', () => {
    const run = cli(['validate', '-f', writeFile('empty2.yaml', '')]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /warning \[SNW0007\]/);
  });

  test('a file of only comments is warning SNW0007', () => {
    const result = validateText('comments.yaml', '# nothing here\n  # still nothing\n');
    assert.deepEqual(result.diagnostics.map((d) => [d.level, d.code]), [['warning', 'SNW0007']]);
  });

  test('`---` separators only are warning SNW0007, not three broken documents', () => {
    const result = validateText('seps.yaml', '---\n---\n---\n');
    assert.deepEqual(result.diagnostics.map((d) => [d.level, d.code]), [['warning', 'SNW0007']]);
  });

  test('empty documents between real ones are skipped', () => {
    const result = validateText('gaps.yaml', `---\n---\n${service('a')}---\n---\n${service('b')}`);
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(result.resources.map((r) => r.metadata.name), ['a', 'b']);
  });

  test('a JSON file is read', async () => {
    const json = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'json-svc' }, spec: { ports: [{ port: 80 }] } }, null, 2);
    const result = await validateInputs([writeFile('svc.json', json)]);
    assert.deepEqual(errorsOf(result.diagnostics), []);
    assert.equal(result.resources[0]?.metadata.name, 'json-svc');
  });

  test('a JSON syntax error is SNW0004 with its line', async () => {
    const path = writeFile('broken.json', '{\n  "apiVersion": "v1",\n  "kind": "Service"\n  "metadata": {"name": "x"}\n}\n');
    const result = await validateInputs([path]);
    const first = result.diagnostics[0];
    assert.equal(first.code, 'SNW0004');
    assert.equal(first.source?.file, path);
    assert.equal(first.source?.line, 4);
  });

  test('duplicate keys are SNW0004 at the second key', () => {
    const result = validateText('dup.yaml', service('a').replace('kind: Service\n', 'kind: Service\nkind: Service\n'));
    assert.deepEqual(codes(result.diagnostics), ['SNW0004']);
    assert.match(result.diagnostics[0].message, /unique/);
    assert.equal(result.diagnostics[0].source?.line, 3);
  });

  test('a document that is a list is SNW0008', () => {
    const result = validateText('list.yaml', '- a\n- b\n');
    assert.deepEqual(codes(result.diagnostics), ['SNW0008']);
    assert.match(result.diagnostics[0].message, /a list/);
  });

  test('a document that is a scalar is SNW0008', () => {
    const result = validateText('scalar.yaml', 'just some words\n');
    assert.deepEqual(codes(result.diagnostics), ['SNW0008']);
  });
});

describe('inputs', () => {
  test('a directory reads .yaml, .yml and .json (in nested folders) and ignores .txt', async () => {
    const mixed = join(dir, 'mixed');
    writeFile('mixed/a.yaml', service('from-yaml'));
    writeFile('mixed/b.yml', service('from-yml'));
    writeFile('mixed/nested/c.json', JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'from-json' }, spec: { ports: [{ port: 80 }] } }));
    writeFile('mixed/notes.txt', 'this: is: not yaml: [\n');
    writeFile('mixed/UPPER.YAML', service('from-upper'));
    const result = await validateInputs([mixed]);
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(result.resources.map((r) => r.metadata.name).sort(), ['from-json', 'from-upper', 'from-yaml', 'from-yml']);
  });

  test('a missing path is SNW0001 naming it, and the other inputs are still read', async () => {
    const missing = join(dir, 'no-such-file.yaml');
    const result = await validateInputs([missing, writeFile('present.yaml', service('present'))]);
    assert.deepEqual(codes(result.diagnostics), ['SNW0001']);
    assert.match(result.diagnostics[0].message, /no such file or directory/);
    assert.equal(result.diagnostics[0].source?.file, missing);
    assert.deepEqual(result.resources.map((r) => r.metadata.name), ['present']);
  });

  test('a FIFO inside a directory is skipped rather than waited on', async (t) => {
    const fifoDir = join(dir, 'with-fifo');
    writeFile('with-fifo/real.yaml', service('real'));
    const made = spawnSync('mkfifo', [join(fifoDir, 'pipe.yaml')]);
    if (made.status !== 0) return t.skip('mkfifo is not available here');
    const result = await within(3000, () => validateInputs([fifoDir]));
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(result.resources.map((r) => r.metadata.name), ['real']);
  });

  test('a pipe named on the command line is read in bounded chunks (like `-f <(kustomize build)`)', () => {
    // Through a shell pipe: node's own stdin for a child is a socket, which /dev/stdin cannot reopen.
    const file = writeFile('piped.yaml', service('from-pipe'));
    const run = spawnSync('sh', ['-c', 'cat "$1" | "$0" bin/sinew.js validate -f /dev/stdin', process.execPath, file], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /1 resource valid/);
  });

  test('stdin (-) through the CLI', () => {
    const ok = cli(['validate', '-f', '-'], service('from-stdin'));
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /1 resource valid/);
    const bad = cli(['validate', '-f', '-', '-o', 'json'], '- not\n- a resource\n');
    assert.equal(bad.status, 1);
    const report = JSON.parse(bad.stdout);
    assert.deepEqual(report.diagnostics.map((d: Diagnostic) => [d.code, d.source?.file]), [['SNW0008', '<stdin>']]);
  });
});

describe('positions in multi-document files', () => {
  test('errors in the third document name its own line and column', () => {
    const third = [
      'apiVersion: v1',
      'kind: Service',
      'metadata:',
      '  name: Not_A_Name',
      'spce:',
      '  ports: []',
      'spec:',
      '  ports: [{port: 80}]',
    ].join('\n');
    const text = `${service('one')}---\n# a comment moves nothing\n${service('two')}---\n${third}\n`;
    // Documents 1 and 2 are 7 lines each plus separators and a comment: the third starts at line 18.
    const result = validateText('multi.yaml', text);
    const found = result.diagnostics.map((d) => [d.code, d.path, d.source?.line, d.source?.column]);
    assert.deepEqual(found.sort(), [
      ['SNW0012', 'metadata.name', 21, 9],
      ['SNW0104', 'spce', 22, 1],
    ]);
    assert.deepEqual(result.resources.map((r) => [r.metadata.name, r.source?.line]), [['one', 1], ['two', 10]]);
  });

  test('a syntax error in the third document is reported there, and the first two still load', () => {
    const text = `${service('one')}---\n${service('two')}---\napiVersion: v1\nkind: Service\nmetadata: {name: three\n`;
    const result = validateText('multi.yaml', text);
    assert.equal(result.diagnostics[0].code, 'SNW0004');
    assert.ok(result.diagnostics[0].source!.line >= 19, `line ${result.diagnostics[0].source!.line}`);
    assert.deepEqual(result.resources.map((r) => r.metadata.name), ['one', 'two']);
  });
});
