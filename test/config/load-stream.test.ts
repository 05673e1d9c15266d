/**
 * Reading a large input one document at a time (load.ts streamText): documents come as they
 * are read, positions inside any document are still exact (its text is read again when a
 * position is asked for), and a failure part-way refuses the input as a whole. Text that
 * arrives in pieces (load.ts DocumentReader, validate.ts TextValidator: the apply API) gives
 * the same documents, positions and refusals as the whole text.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DocumentReader, parseText, streamText } from '../../src/config/load.js';
import { TextValidator, validateText, type ValidationResult } from '../../src/config/validate.js';
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

/** `text` validated as pieces of `size` characters, as a request body arrives. */
function validateInPieces(file: string, text: string, size: number): ValidationResult {
  const validator = new TextValidator(file);
  for (let i = 0; i < text.length; i += size) validator.write(text.slice(i, i + size));
  return validator.end();
}

describe('text read in pieces', () => {
  // Documents of varying length, so that piece boundaries fall everywhere: inside lines,
  // inside keys, on `---`, inside a multi-byte character.
  const many = (n: number) => Array.from({ length: n }, (_, i) => service(`s${i}`, i % 3 === 0 ? `\n    appProtocol: http # café ${'·'.repeat(i % 17)}` : '')).join('---\n');
  const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

  test('an error in a document late in a large input names its line, whatever the pieces', () => {
    const text = many(3000) + '---\n' + service('late').replace('port: 9080', 'port: "x"') + '---\n' + service('after');
    const whole = validateText('big.yaml', text);
    const expected = lineOf(text, 'port: "x"');
    assert.ok(expected > 20_000, `line ${expected}`);
    for (const size of [7, 4096, 65536]) {
      const result = validateInPieces('big.yaml', text, size);
      const error = result.diagnostics.find((d) => d.level === 'error');
      assert.ok(error, `pieces of ${size}: ${JSON.stringify(result.diagnostics)}`);
      assert.deepEqual(error.source, { file: 'big.yaml', line: expected, column: 11 }, `pieces of ${size}`);
      assert.deepEqual(result.diagnostics, whole.diagnostics, `pieces of ${size}`);
      assert.equal(result.resources.length, 3001, 'every other document is read');
      assert.deepEqual(result.resources, whole.resources);
    }
    // A character at a time.
    const small = many(40) + '---\n' + service('late').replace('port: 9080', 'port: "x"');
    assert.deepEqual(validateInPieces('small.yaml', small, 1), validateText('small.yaml', small));
    assert.equal(validateInPieces('small.yaml', small, 1).diagnostics[0]?.source?.line, lineOf(small, 'port: "x"'));
  });

  test('a syntax error in the middle is reported at its line, and the documents around it are still read', () => {
    const text = many(200) + '---\n' + service('twice').replace('  name: twice', '  name: twice\n  name: again') + '---\n' + many(10).replaceAll('name: s', 'name: t');
    const result = validateInPieces('in.yaml', text, 1000);
    const syntax = result.diagnostics.filter((d) => d.code === 'SNW0004');
    assert.equal(syntax.length, 1, JSON.stringify(result.diagnostics));
    assert.deepEqual(syntax[0]!.source, { file: 'in.yaml', line: lineOf(text, 'name: again'), column: 3 });
    assert.equal(result.resources.length, 210);
    assert.deepEqual(result.diagnostics, validateText('in.yaml', text).diagnostics);
  });

  test('NUL bytes in a later piece are refused at their line and column, and nothing is read', () => {
    const text = many(50) + '---\nkind: Ser\u0000vice\n';
    const reader = new DocumentReader('in.yaml');
    const read: unknown[] = [];
    for (let i = 0; i < text.length; i += 100) for (const doc of reader.write(text.slice(i, i + 100))) read.push(doc);
    for (const doc of reader.end()) read.push(doc);
    assert.equal(reader.fatal?.code, 'SNW0002');
    assert.deepEqual(reader.fatal?.source, { file: 'in.yaml', line: lineOf(text, 'Ser\u0000'), column: 10 });
    const validated = validateInPieces('in.yaml', text, 100);
    assert.deepEqual(validated, { resources: [], diagnostics: [reader.fatal], skipped: 0 });
  });

  test('nesting past the limit in a later piece refuses the input as a whole', () => {
    const text = many(20) + '---\nspec: ' + '['.repeat(200) + ']'.repeat(200) + '\n';
    const result = validateInPieces('in.yaml', text, 64);
    assert.deepEqual(result.resources, []);
    assert.equal(result.diagnostics.length, 1);
    assert.equal(result.diagnostics[0]!.code, 'SNW0006');
    assert.equal(result.diagnostics[0]!.source?.line, lineOf(text, 'spec: [['));
  });

  test('JSON on one line, a byte order mark, and a last line without a newline read as whole text does', () => {
    const json = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'j' }, spec: { ports: [{ name: 'http', port: 9080 }] } });
    for (const text of ['\ufeff' + json, service('a') + '---\n' + service('b').trimEnd()]) {
      const pieces = validateInPieces('in', text, 5);
      assert.deepEqual(pieces, validateText('in', text));
      assert.ok(pieces.resources.length > 0 && pieces.diagnostics.length === 0, JSON.stringify(pieces.diagnostics));
    }
    assert.deepEqual(validateInPieces('in', '  \n\n ', 2).diagnostics.map((d) => d.code), ['SNW0007']);
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
