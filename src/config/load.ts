/**
 * Reading configuration input: files, directories and stdin, multi-document YAML and JSON,
 * keeping for every node its file, line and column.
 *
 * Hostile input is bounded before it reaches the parser (STYLE.md "bad input"): a size
 * limit checked before reading, strict UTF-8, a nesting pre-scan (the parser recurses), and
 * the YAML library's alias-expansion limit against alias bombs.
 */
import { readdir, stat, open } from 'node:fs/promises';
import { join, extname } from 'node:path';
import { LineCounter, parseAllDocuments, isNode, type Document, type Node as YamlNode } from 'yaml';
import type { Diagnostic, SourcePosition } from '../api/diagnostics.js';
import type { FieldPath } from '../core/path.js';

/** Limits on what one input may cost to read. */
export interface LoadLimits {
  /** Largest input read, in bytes (default 16 MiB). */
  maxBytes: number;
  /** Deepest nesting of mappings and sequences (default 128; no resource needs 30). */
  maxDepth: number;
  /** Most alias expansions per document (default 100, the YAML library's own default). */
  maxAliasCount: number;
  /** Most documents per input (default 10 000). */
  maxDocuments: number;
}

export const defaultLoadLimits: LoadLimits = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxDepth: 128,
  maxAliasCount: 100,
  maxDocuments: 10_000,
});

/** One YAML/JSON document as read, before validation. */
export interface RawDocument {
  /** Display name of the input (path as given, or `<stdin>`). */
  file: string;
  /** 0-based index of the document inside its file. */
  index: number;
  /** The plain JS value of the document. */
  value: unknown;
  /** Where the document starts. */
  start: SourcePosition;
  /** Finds the position of the node at `path` (or its nearest existing parent). */
  positionOf(path: FieldPath): SourcePosition;
  /** Same as positionOf, but points at the key of a mapping entry rather than its value. */
  keyPositionOf(path: FieldPath): SourcePosition;
}

export interface LoadResult {
  documents: RawDocument[];
  diagnostics: Diagnostic[];
}

const YAML_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * Loads every document from the given inputs. Directories are read recursively (files ending
 * .yaml, .yml or .json, in name order); `-` reads stdin. Never throws for bad input: problems
 * come back as diagnostics and the rest of the input is still read.
 */
export async function loadInputs(inputs: readonly string[], limits: LoadLimits = defaultLoadLimits): Promise<LoadResult> {
  const result: LoadResult = { documents: [], diagnostics: [] };
  for (const input of inputs) {
    if (input === '-') {
      const bytes = await readStdin(limits.maxBytes);
      if (bytes === 'too-large') result.diagnostics.push(tooLarge('<stdin>', limits));
      else mergeInto(result, parseText('<stdin>', bytes, limits));
      continue;
    }
    for (const file of await expand(input, result.diagnostics)) {
      const bytes = await readFileBounded(file, limits.maxBytes, result.diagnostics);
      if (bytes) mergeInto(result, parseText(file, bytes, limits));
    }
  }
  return result;
}

function mergeInto(into: LoadResult, from: LoadResult): void {
  into.documents.push(...from.documents);
  into.diagnostics.push(...from.diagnostics);
}

async function expand(input: string, diagnostics: Diagnostic[]): Promise<string[]> {
  let info;
  try {
    info = await stat(input);
  } catch (err) {
    diagnostics.push(unreadable(input, err));
    return [];
  }
  if (!info.isDirectory()) return [input];
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      diagnostics.push(unreadable(dir, err));
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (YAML_EXTENSIONS.has(extname(entry.name).toLowerCase())) files.push(path);
    }
  };
  await walk(input);
  return files;
}

async function readFileBounded(file: string, maxBytes: number, diagnostics: Diagnostic[]): Promise<Uint8Array | undefined> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      // Checked before reading: a 100 MB file costs a stat, not 100 MB of memory.
      if (size > maxBytes) {
        diagnostics.push(tooLarge(file, { maxBytes }, size));
        return undefined;
      }
      const buffer = Buffer.alloc(size);
      let offset = 0;
      while (offset < size) {
        const { bytesRead } = await handle.read(buffer, offset, size - offset, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
      }
      return buffer.subarray(0, offset);
    } finally {
      await handle.close();
    }
  } catch (err) {
    diagnostics.push(unreadable(file, err));
    return undefined;
  }
}

async function readStdin(maxBytes: number): Promise<Uint8Array | 'too-large'> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      process.stdin.destroy();
      return 'too-large';
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Parses text already in memory. Exposed for the control plane's API and for tests; `file`
 * is only a display name.
 */
export function parseText(file: string, input: Uint8Array | string, limits: LoadLimits = defaultLoadLimits): LoadResult {
  const result: LoadResult = { documents: [], diagnostics: [] };
  let text: string;
  if (typeof input === 'string') {
    text = input;
    if (Buffer.byteLength(text) > limits.maxBytes) {
      result.diagnostics.push(tooLarge(file, limits, Buffer.byteLength(text)));
      return result;
    }
  } else {
    if (input.length > limits.maxBytes) {
      result.diagnostics.push(tooLarge(file, limits, input.length));
      return result;
    }
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      result.diagnostics.push(at(file, 1, 1, 'SNW0002', 'input is not valid UTF-8 text'));
      return result;
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const { line, column } = lineColumnOf(text, nul);
    result.diagnostics.push(at(file, line, column, 'SNW0002', 'input contains NUL bytes: binary data, not YAML or JSON'));
    return result;
  }
  const tooDeep = findExcessiveNesting(text, limits.maxDepth);
  if (tooDeep !== undefined) {
    const { line, column } = lineColumnOf(text, tooDeep);
    result.diagnostics.push(
      at(file, line, column, 'SNW0006', `document nests deeper than ${limits.maxDepth} levels; no resource needs that, so it was not parsed`),
    );
    return result;
  }
  if (text.trim() === '') {
    result.diagnostics.push(at(file, 1, 1, 'SNW0007', 'input is empty', 'warning'));
    return result;
  }

  const lineCounter = new LineCounter();
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false }) as Document.Parsed[];
  } catch (err) {
    // The pre-scan bounds nesting, so this is a parser failure we did not foresee; report, don't crash.
    result.diagnostics.push(at(file, 1, 1, 'SNW0004', `cannot parse: ${(err as Error).message}`));
    return result;
  }
  if (!Array.isArray(docs)) docs = [docs as unknown as Document.Parsed];
  if (docs.length > limits.maxDocuments) {
    result.diagnostics.push(at(file, 1, 1, 'SNW0003', `input holds ${docs.length} documents; at most ${limits.maxDocuments} are read`));
    return result;
  }

  const pos = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };

  docs.forEach((doc, index) => {
    const errors = doc.errors ?? [];
    if (errors.length > 0) {
      for (const error of errors) {
        const p = pos(error.pos[0]);
        result.diagnostics.push(at(file, p.line, p.column, 'SNW0004', cleanYamlMessage(error.message)));
      }
      return;
    }
    if (doc.contents === null) return; // an empty document between `---` separators
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: limits.maxAliasCount });
    } catch (err) {
      const message = (err as Error).message;
      const start = pos(doc.range?.[0] ?? 0);
      if (/alias/i.test(message)) {
        result.diagnostics.push(
          at(file, start.line, start.column, 'SNW0005', `document expands more than ${limits.maxAliasCount} YAML aliases (an alias bomb?); write the values out instead`),
        );
      } else {
        result.diagnostics.push(at(file, start.line, start.column, 'SNW0004', `cannot read document: ${message}`));
      }
      return;
    }
    const contents = doc.contents as YamlNode;
    const start = pos(contents.range?.[0] ?? 0);
    const find = (path: FieldPath, key: boolean): SourcePosition => {
      const located = locate(contents, path, key);
      return located ? pos(located) : start;
    };
    result.documents.push({
      file,
      index,
      value,
      start,
      positionOf: (path) => find(path, false),
      keyPositionOf: (path) => find(path, true),
    });
  });
  if (result.documents.length === 0 && result.diagnostics.length === 0) {
    result.diagnostics.push(at(file, 1, 1, 'SNW0007', 'input holds no documents', 'warning'));
  }
  return result;
}

/**
 * Walks the YAML node tree along `path` and returns the source offset of the deepest node
 * reached: the exact node when the whole path exists, else the nearest parent.
 */
function locate(root: YamlNode, path: FieldPath, wantKey: boolean): number | undefined {
  let node: unknown = root;
  let offset = (root.range?.[0] ?? 0) as number;
  for (let i = 0; i < path.length; i++) {
    const part = path[i];
    const n = node as { items?: unknown[]; range?: number[] } | undefined;
    if (!n || !Array.isArray(n.items)) return offset;
    let next: unknown;
    let keyOffset: number | undefined;
    if (typeof part === 'number') {
      next = n.items[part];
    } else {
      for (const item of n.items) {
        const pair = item as { key?: { value?: unknown; range?: number[] }; value?: unknown };
        if (pair && pair.key && String(pair.key.value) === part) {
          next = pair.value;
          keyOffset = pair.key.range?.[0];
          break;
        }
      }
    }
    if (next === undefined || next === null) return keyOffset ?? offset;
    const last = i === path.length - 1;
    if (last && wantKey && keyOffset !== undefined) return keyOffset;
    node = next;
    const range = isNode(next) ? (next as YamlNode).range : undefined;
    offset = range?.[0] ?? keyOffset ?? offset;
  }
  return offset;
}

/**
 * Finds the offset where flow or block nesting first exceeds `maxDepth`, or undefined.
 * A linear scan with no recursion, so it is safe on any input. It over-approximates (it
 * counts brackets inside plain scalars), which only matters for absurd inputs.
 */
function findExcessiveNesting(text: string, maxDepth: number): number | undefined {
  let flowDepth = 0;
  let quote: '"' | "'" | undefined;
  let comment = false;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      comment = false;
      lineStart = true;
      indent = 0;
      if (quote === "'") quote = undefined;
      continue;
    }
    if (comment) continue;
    if (lineStart) {
      if (c === 32) {
        indent++;
        continue;
      }
      if (c === 45 /* '-' */ && (text.charCodeAt(i + 1) === 32 || text.charCodeAt(i + 1) === 10)) {
        indent += 2; // "- - - x" nests one sequence per dash
        i++;
        continue;
      }
      lineStart = false;
      // Block nesting: one level per indentation step of at least one space.
      if (indent > maxDepth * 2 && flowDepth === 0) return i;
    }
    if (quote) {
      if (quote === '"' && c === 92 /* backslash */) i++;
      else if (c === quote.charCodeAt(0)) quote = undefined;
      continue;
    }
    if (c === 34) quote = '"';
    else if (c === 39 && flowDepth > 0) quote = "'";
    else if (c === 35 /* # */ && (i === 0 || text.charCodeAt(i - 1) === 32)) comment = true;
    else if (c === 91 || c === 123) {
      if (++flowDepth > maxDepth) return i;
    } else if ((c === 93 || c === 125) && flowDepth > 0) flowDepth--;
  }
  return undefined;
}

function lineColumnOf(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lastNewline = -1;
  for (let i = 0; i < offset; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lastNewline = i;
    }
  }
  return { line, column: offset - lastNewline };
}

function cleanYamlMessage(message: string): string {
  return message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

function at(file: string, line: number, column: number, code: string, message: string, level: Diagnostic['level'] = 'error'): Diagnostic {
  return { level, code, message, source: { file, line, column } };
}

function tooLarge(file: string, limits: Pick<LoadLimits, 'maxBytes'>, size?: number): Diagnostic {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return {
    level: 'error',
    code: 'SNW0003',
    message: `input is ${size === undefined ? 'larger than' : mib(size) + ', over'} the ${mib(limits.maxBytes)} limit; split it into smaller files`,
    source: { file, line: 1, column: 1 },
  };
}

function unreadable(file: string, err: unknown): Diagnostic {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
  return { level: 'error', code: 'SNW0001', message: `cannot read ${file}: ${why}`, source: { file, line: 1, column: 1 } };
}
