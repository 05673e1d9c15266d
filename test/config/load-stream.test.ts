/**
 * Reading a large input one document at a time (load.ts streamText): documents come as they
 * are read, positions inside any document are still exact (its text is read again when a
 * position is asked for), and a failure part-way refuses the input as a whole.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseText, streamText } from '../../src/config/load.js';
import { validateText } from '../../src/config/validate.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const service = (name: string, extra = '') => `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports:\n  - name: http\n    port: 9080${extra}\n`;

describe('streamText', () => {
  test('yields each document as it is read, before the rest of the input is composed', () => {
    const stream = streamText('in.yaml', [service('a'), service('b'), 'a: [unclosed\n'].join('---\n'));
    const iterator = stream.documents[Symbol.iterator]();
    const first = iterator.next();
    assert.equal(first.done, false);
    assert.equal((first.value.value as { metadata: { name: string } }).metadata.name, 'a');
    assert.equal(stream.diagnostics.length, 0, 'the broken third document has not been read yet');
    const rest = [...{ [Symbol.iterator]: () => iterator }];
    assert.equal(rest.length, 1);
    assert.ok(stream.diagnostics.some((d) => d.code === 'SNW0004'), 'read by the end');
  });

  test('positions inside later documents are exact, indented documents included', () => {
    const text = [service('a'), service('b', '\n    targetPort: 8080'), '  # a comment line\n' + service('c')].join('---\n');
    const { documents } = parseText('in.yaml', text);
    const lines = text.split('\n');
    const lineOf = (needle: string, from = 0) => lines.findIndex((l, i) => i >= from && l.includes(needle)) + 1;
    const b = documents[1]!;
    assert.deepEqual(b.positionOf(['spec', 'ports', 0, 'targetPort']), { file: 'in.yaml', line: lineOf('targetPort'), column: 17 });
    assert.deepEqual(b.keyPositionOf(['spec', 'ports', 0, 'targetPort']), { file: 'in.yaml', line: lineOf('targetPort'), column: 5 });
    const c = documents[2]!;
    assert.equal(c.positionOf(['metadata', 'name']).line, lineOf('name: c'));
    // Asked again out of order: each document is read again as needed.
    assert.equal(b.positionOf(['metadata', 'name']).line, lineOf('name: b'));
    assert.equal(documents[0]!.positionOf(['spec', 'ports', 0, 'port']).line, lineOf('port: 9080'));
  });

  test('a validation error in the last of many documents names its line', () => {
    const docs = Array.from({ length: 50 }, (_, i) => service(`s${i}`));
    docs.push(service('last').replace('port: 9080', 'port: "x"'));
    const text = docs.join('---\n');
    const result = validateText('many.yaml', text);
    const error = result.diagnostics.find((d) => d.level === 'error');
    assert.ok(error, JSON.stringify(result.diagnostics));
    assert.equal(error.source?.line, text.split('\n').findIndex((l) => l.includes('port: "x"')) + 1);
    assert.equal(result.resources.length, 50);
  });

  test('stored resources are plain JSON data, equal to what was read', () => {
    const [resource] = validateText('in.yaml', service('a', '\n    appProtocol: http')).resources;
    assert.ok(resource);
    assert.ok(Object.isFrozen(resource.spec));
    assert.deepEqual(resource.spec, { ports: [{ name: 'http', port: 9080, appProtocol: 'http' }] });
    assert.deepEqual(resource.metadata, { name: 'a', namespace: 'default' });
  });
});

/** A full garbage collection, in this process (the flag set at run time, as node's own tests do). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('what resources keep of their input', () => {
  test('regression: the resources read from a large input do not keep its text alive', () => {
    // Strings read from a parsed document are slices of the whole input in V8: one such
    // string in a kept resource (its apiVersion was) kept all 16 MB of the input alive for as
    // long as the config was in force. Long comments make the text large and the resources small.
    const comment = `# ${'x'.repeat(4000)}\n`;
    const rule = (name: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: ${name}\nspec:\n  host: ${name}\n`;
    const build = () => Array.from({ length: 4000 }, (_, i) => comment + rule(`r${i}`)).join('---\n');
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    let text: string | undefined = build();
    const textBytes = text.length;
    const { resources } = validateText('big.yaml', text);
    text = undefined;
    collectGarbage();
    const kept = process.memoryUsage().heapUsed - before;
    assert.equal(resources.length, 4000);
    assert.ok(kept < textBytes / 4, `the resources keep ${(kept / 1048576).toFixed(1)} MB for ${(textBytes / 1048576).toFixed(1)} MB of input`);
  });
});
