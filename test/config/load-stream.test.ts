/**
 * Reading a large input one document at a time (load.ts streamText): documents come as they
 * are read, positions inside any document are still exact (its text is read again when a
 * position is asked for), and a failure part-way refuses the input as a whole.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseText, streamText } from '../../src/config/load.js';
import { validateText } from '../../src/config/validate.js';

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
