/**
 * Reading configuration input: files, directories and stdin, multi-document YAML and JSON,
 * keeping for every node its file, line and column.
 *
 * Hostile input is bounded before it reaches the parser (STYLE.md "bad input"): a size
 * limit checked before reading, strict UTF-8, a nesting pre-scan (the parser recurses), and
 * the YAML library's alias-expansion limit against alias bombs.
 */
import { readdir, stat, open, type FileHandle } from 'node:fs/promises';
import { join, extname } from 'node:path';
import { Composer, Lexer, Parser, parseDocument, isMap, isNode, isPair, isScalar, isSeq, type Document, type Node as YamlNode } from 'yaml';
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

/** Syntax errors reported per document before the rest are summarised. */
const MAX_SYNTAX_ERRORS = 20;

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
      else if (!YAML_EXTENSIONS.has(extname(entry.name).toLowerCase())) continue;
      else if (entry.isFile()) files.push(path);
      else if (entry.isSymbolicLink() && (await isRegularFile(path))) files.push(path);
      // Anything else found while walking (a FIFO, a socket, a device) is skipped: opening a
      // FIFO blocks until someone writes to it, and nobody asked for it by name.
    }
  };
  await walk(input);
  return files;
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false; // a dangling link is not input
  }
}

async function readFileBounded(file: string, maxBytes: number, diagnostics: Diagnostic[]): Promise<Uint8Array | undefined> {
  try {
    const handle = await open(file, 'r');
    try {
      const info = await handle.stat();
      // A pipe named on the command line (`-f <(kustomize build)`) has no size: read it in
      // chunks up to the limit, as stdin is.
      if (!info.isFile()) {
        const bytes = await readChunksBounded(handle, maxBytes);
        if (bytes === 'too-large') diagnostics.push(tooLarge(file, { maxBytes }));
        return bytes === 'too-large' ? undefined : bytes;
      }
      const { size } = info;
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

async function readChunksBounded(handle: FileHandle, maxBytes: number): Promise<Uint8Array | 'too-large'> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    total += bytesRead;
    if (total > maxBytes) return 'too-large';
    chunks.push(chunk.subarray(0, bytesRead));
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
  const stream = streamText(file, input, limits);
  const documents = [...stream.documents];
  return stream.fatal ? { documents: [], diagnostics: [stream.fatal] } : { documents, diagnostics: stream.diagnostics };
}

/** The documents of an input as they are read, for a caller that handles one at a time. */
export interface LoadStream {
  /** Iterate once; each document is read when asked for. */
  readonly documents: Iterable<RawDocument>;
  /** Every problem found so far; complete once `documents` has been iterated. */
  readonly diagnostics: Diagnostic[];
  /**
   * Set when reading stopped part-way (the parser failed, or there were too many documents):
   * the input is refused as a whole, and whatever documents came before it count for nothing.
   */
  readonly fatal: Diagnostic | undefined;
}

/**
 * Like parseText, but yields each document as soon as it is read, and keeps nothing of it:
 * a caller that validates each document and lets its value go (validate.ts validateText)
 * holds one document's value at a time instead of the whole input's, which for a large input
 * is several times its size (the plain values of a 15 MB config took 70 MB). Positions inside
 * any document stay exact: the text is at hand, so a document asked about after others were
 * read is read again.
 */
export function streamText(file: string, input: Uint8Array | string, limits: LoadLimits = defaultLoadLimits): LoadStream {
  const refused = (diagnostic: Diagnostic): LoadStream => ({ documents: [], diagnostics: [diagnostic], fatal: undefined });
  let text: string;
  if (typeof input === 'string') {
    text = input;
    if (Buffer.byteLength(text) > limits.maxBytes) return refused(tooLarge(file, limits, Buffer.byteLength(text)));
  } else {
    if (input.length > limits.maxBytes) return refused(tooLarge(file, limits, input.length));
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      return refused(at(file, 1, 1, 'SNW0002', 'input is not valid UTF-8 text'));
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const reader = new DocumentReader(file, limits, { text });
  const stream = {
    documents: { [Symbol.iterator]: () => readAll() },
    diagnostics: reader.diagnostics,
    fatal: undefined as Diagnostic | undefined,
  };
  function* readAll(): Generator<RawDocument> {
    yield* reader.write(text);
    yield* reader.end();
    stream.fatal = reader.fatal;
  }
  return stream;
}

/**
 * Reads YAML/JSON documents from text that arrives in pieces (a request body as it comes off
 * the socket): `write` each piece and take the documents it completes, then `end` for the
 * rest. What it holds at once is the piece being read, the syntax tree of the document being
 * composed, and the line starts since that document began: never the whole input. The
 * control plane's apply reads a 15 MB config this way instead of holding its text, its line
 * table and the text being parsed all at once (bench/controlplane-memory.ts).
 *
 * The same bounds as for text read whole: each piece is checked for NUL bytes and pre-scanned
 * for nesting and document count (InputScanner, one lexer carried across pieces) before
 * the parser sees it; a finding, or a parser failure, stops reading and sets `fatal`, and the
 * input is refused as a whole. The documents a piece completes come lazily: iterate them
 * before writing the next piece.
 *
 * Positions (`positionOf`) are exact for the document just read; a document asked about
 * later is read again from `options.text` when the whole text is at hand, and otherwise
 * answers with where it starts. (validate.ts asks only about the document it is checking.)
 */
export class DocumentReader {
  /** Every problem found so far. */
  readonly diagnostics: Diagnostic[] = [];
  /** Set when reading stopped part-way; the input is then refused as a whole. */
  fatal: Diagnostic | undefined;
  private readonly scanner: InputScanner;
  private readonly lines = new LineTable();
  private readonly parser: Parser;
  // uniqueKeys is checked below instead (duplicateKeys): the library compares each key with
  // every earlier one, so 40 000 keys in one mapping (0.4 MB) took 30 s; a Set makes it linear.
  private readonly composer = new Composer({ uniqueKeys: false, prettyErrors: false });
  private bytes = 0;
  private index = 0;
  private documentsRead = 0;
  /** The input since its last newline. */
  private unfinishedLine = '';
  private sawText = false;
  /** Offset, line and line start of the raw input so far, for the pre-checks' positions. */
  private rawOffset = 0;
  private rawLine = 1;
  private rawLineStart = 0;
  /** The tree of the document just read (or read again), for positions. */
  private tree: { start: number; contents: YamlNode | null; base: number } | undefined;

  constructor(
    private readonly file: string,
    private readonly limits: LoadLimits = defaultLoadLimits,
    private readonly options: { text?: string } = {},
  ) {
    this.scanner = new InputScanner(limits);
    this.parser = new Parser((offset) => this.lines.add(offset));
  }

  /** Reads `piece`; yields the documents it completes. */
  *write(piece: string): Generator<RawDocument> {
    if (this.fatal) return;
    if (this.bytes === 0 && piece.charCodeAt(0) === 0xfeff) piece = piece.slice(1);
    this.bytes += Buffer.byteLength(piece);
    if (this.bytes > this.limits.maxBytes) return this.refuse(tooLarge(this.file, this.limits));
    if (!this.sawText && /\S/.test(piece)) this.sawText = true;
    const nul = piece.indexOf('\u0000');
    if (nul >= 0) {
      const { line, column } = this.rawPosition(piece, nul);
      return this.refuse(at(this.file, line, column, 'SNW0002', 'input contains NUL bytes: binary data, not YAML or JSON'));
    }
    this.advanceRaw(piece);
    // Only whole lines go on to the lexers: given the start of a line, the library's lexer
    // reads it again from its start with each further piece, which made one long line (a
    // minified JSON config, or 16 MB of spaces) cost time in the square of its length.
    const lastNewline = piece.lastIndexOf('\n');
    if (lastNewline < 0) {
      this.unfinishedLine += piece;
      return;
    }
    const lines = this.unfinishedLine + piece.slice(0, lastNewline + 1);
    this.unfinishedLine = piece.slice(lastNewline + 1);
    yield* this.read(lines, true);
  }

  /** The end of the input: yields the documents still to come. */
  *end(): Generator<RawDocument> {
    if (this.fatal) return;
    const rest = this.unfinishedLine;
    this.unfinishedLine = '';
    yield* this.read(rest, false);
  }

  private *read(text: string, incomplete: boolean): Generator<RawDocument> {
    if (!this.prescan(text, incomplete)) return;
    if (incomplete) {
      yield* this.compose(this.parser.parse(text, true), false);
      return;
    }
    if (!this.sawText) {
      this.diagnostics.push(at(this.file, 1, 1, 'SNW0007', 'input is empty', 'warning'));
      return;
    }
    yield* this.compose(this.parser.parse(text, false), true);
    if (this.fatal) return;
    if (this.documentsRead === 0 && this.diagnostics.length === 0) {
      this.diagnostics.push(at(this.file, 1, 1, 'SNW0007', 'input holds no documents', 'warning'));
    }
  }

  private refuse(diagnostic: Diagnostic): void {
    this.fatal = diagnostic;
    this.diagnostics.push(diagnostic);
  }

  /** Runs the nesting and document-count pre-scan over `piece`; false (and refused) on a finding. */
  private prescan(piece: string, incomplete: boolean): boolean {
    const finding = this.scanner.scan(piece, incomplete);
    if (!finding) return true;
    if (finding.kind === 'too-deep') {
      this.refuse(at(this.file, finding.line, finding.column, 'SNW0006', tooDeepMessage(this.limits)));
    } else {
      this.refuse(at(this.file, 1, 1, 'SNW0003', `input holds more than ${this.limits.maxDocuments} documents, the most that are read; split it`));
    }
    return false;
  }

  /** Composes the parser's tokens into documents, driven by hand so that a parser failure is caught around each step, not around the consumer's code. */
  private *compose(tokens: Generator<import('yaml').CST.Token>, atEnd: boolean): Generator<RawDocument> {
    const composer = this.composer;
    const docs = (function* () {
      for (const token of tokens) yield* composer.next(token);
      if (atEnd) yield* composer.end();
    })() as Iterator<Document.Parsed>;
    for (;;) {
      let document: RawDocument | undefined;
      try {
        const next = docs.next();
        if (next.done) break;
        if (this.index >= this.limits.maxDocuments) {
          this.refuse(at(this.file, 1, 1, 'SNW0003', `input holds more than ${this.limits.maxDocuments} documents; at most ${this.limits.maxDocuments} are read`));
          return;
        }
        document = this.readDocument(next.value, this.index++);
      } catch (err) {
        this.refuse(this.parserFailure(err));
        return;
      }
      if (document) {
        this.documentsRead++;
        yield document;
      }
    }
  }

  // The pre-scan bounds nesting, so this is a parser failure we did not foresee; report, don't crash.
  // A stack overflow still means "too deep", whatever shape slipped past the scan.
  private parserFailure(err: unknown): Diagnostic {
    const [code, message] = err instanceof RangeError ? ['SNW0006', tooDeepMessage(this.limits)] : ['SNW0004', `cannot parse: ${(err as Error).message}`];
    return at(this.file, 1, 1, code, message);
  }

  private pos(offset: number): SourcePosition {
    const { line, column } = this.lines.position(offset);
    return { file: this.file, line, column };
  }

  private readDocument(doc: Document.Parsed, index: number): RawDocument | undefined {
    const { file, limits } = this;
    // Without the text, nothing before this document is asked about again: its line starts go.
    if (this.options.text === undefined) this.lines.forgetBefore(doc.range[0]);
    const errors: { pos: [number, number]; message: string }[] = [...(doc.errors ?? [])];
    if (errors.length === 0) {
      for (const offset of duplicateKeys(doc.contents)) errors.push({ pos: [offset, offset], message: 'Map keys must be unique' });
    }
    if (errors.length > 0) {
      // Garbage input yields an error per line; the first few say what is wrong.
      for (const error of errors.slice(0, MAX_SYNTAX_ERRORS)) {
        const p = this.pos(error.pos[0]);
        this.diagnostics.push(at(file, p.line, p.column, 'SNW0004', cleanYamlMessage(error.message)));
      }
      if (errors.length > MAX_SYNTAX_ERRORS) {
        const p = this.pos(errors[MAX_SYNTAX_ERRORS].pos[0]);
        this.diagnostics.push(at(file, p.line, p.column, 'SNW0004', `${errors.length - MAX_SYNTAX_ERRORS} more syntax errors in this document not shown`));
      }
      return undefined;
    }
    if (doc.contents === null) return undefined; // an empty document between `---` separators
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: limits.maxAliasCount });
    } catch (err) {
      const message = (err as Error).message;
      const start = this.pos(doc.range?.[0] ?? 0);
      if (err instanceof RangeError) {
        this.diagnostics.push(at(file, start.line, start.column, 'SNW0006', tooDeepMessage(limits)));
      } else if (/alias/i.test(message)) {
        this.diagnostics.push(
          at(file, start.line, start.column, 'SNW0005', `document expands more than ${limits.maxAliasCount} YAML aliases (an alias bomb?); write the values out instead`),
        );
      } else {
        this.diagnostics.push(at(file, start.line, start.column, 'SNW0004', `cannot read document: ${message}`));
      }
      return undefined;
    }
    // `---` with nothing after it (or a bare `null`) is an empty document; kubectl skips those too.
    if (value === null || value === undefined) return undefined;
    const contentsStart = (doc.contents as YamlNode).range?.[0] ?? 0;
    const start = this.pos(contentsStart);
    // Offsets are kept, not the tree: [where the document's text starts, where it ends].
    const docStart = this.lines.lineStartOf(doc.range[0]);
    const docEnd = doc.range[2];
    this.tree = { start: docStart, contents: doc.contents as YamlNode, base: 0 };
    // The tree of one document is kept for positions: the one just read (a caller validating
    // as it reads asks about that one), else the document asked about, read again from the
    // text when there is one (rereadDocument). `base` turns the tree's offsets into offsets
    // of the input.
    const treeAt = (): { contents: YamlNode | null; base: number } | undefined => {
      if (this.tree?.start === docStart) return this.tree;
      const text = this.options.text;
      if (text === undefined) return undefined;
      this.tree = { start: docStart, contents: rereadDocument(text, docStart, docEnd), base: docStart };
      return this.tree;
    };
    const find = (path: FieldPath, key: boolean): SourcePosition => {
      const tree = treeAt();
      const located = tree?.contents ? locate(tree.contents, path, key) : undefined;
      return located !== undefined && tree ? this.pos(tree.base + located) : start;
    };
    return {
      file,
      index,
      value,
      start,
      positionOf: (path) => find(path, false),
      keyPositionOf: (path) => find(path, true),
    };
  }

  /** Line and column of `offset` in `piece`, the raw input so far being counted. */
  private rawPosition(piece: string, offset: number): { line: number; column: number } {
    let line = this.rawLine;
    let lineStart = this.rawLineStart;
    for (let i = piece.indexOf('\n'); i >= 0 && i < offset; i = piece.indexOf('\n', i + 1)) {
      line++;
      lineStart = this.rawOffset + i + 1;
    }
    return { line, column: this.rawOffset + offset - lineStart + 1 };
  }

  private advanceRaw(piece: string): void {
    for (let i = piece.indexOf('\n'); i >= 0; i = piece.indexOf('\n', i + 1)) {
      this.rawLine++;
      this.rawLineStart = this.rawOffset + i + 1;
    }
    this.rawOffset += piece.length;
  }
}

/**
 * The offsets where lines start, from the document being read on (the parser reports each
 * newline): what positions need, without a table of every line of a large input.
 */
class LineTable {
  /** Lines forgotten before `starts[0]`. */
  private forgotten = 0;
  private starts: number[] = [];

  add(offset: number): void {
    // The parser reports offset 0 at the start of every piece until it has consumed text.
    if (this.starts.length > 0 && offset <= this.starts[this.starts.length - 1]!) return;
    this.starts.push(offset);
  }

  /** Drops the line starts before the line holding `offset`. */
  forgetBefore(offset: number): void {
    const i = this.indexOf(offset);
    if (i <= 0) return;
    this.starts = this.starts.slice(i);
    this.forgotten += i;
  }

  lineStartOf(offset: number): number {
    return this.starts[Math.max(0, this.indexOf(offset))] ?? 0;
  }

  /** 1-based line and column of `offset`. */
  position(offset: number): { line: number; column: number } {
    const i = this.indexOf(offset);
    if (i < 0) return { line: this.forgotten + 1, column: 1 };
    return { line: this.forgotten + i + 1, column: offset - this.starts[i]! + 1 };
  }

  /** Index of the last line start at or before `offset` (-1 when none is kept). */
  private indexOf(offset: number): number {
    let low = 0;
    let high = this.starts.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.starts[mid]! <= offset) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }
}

/**
 * One document's syntax tree again, from its text `[start, end)` of the input (`start` at the
 * beginning of a line, so indentation reads as it did), with offsets relative to `start`; null
 * when the text no longer reads as one document. Diagnostics ask for positions inside a
 * document rarely (on an error or a warning), so re-reading the document then costs less
 * than keeping every document's tree for the whole validation.
 */
function rereadDocument(text: string, start: number, end: number): YamlNode | null {
  try {
    const doc = parseDocument(text.slice(start, end), { uniqueKeys: false, prettyErrors: false });
    return doc.errors.length === 0 && isNode(doc.contents) ? (doc.contents as YamlNode) : null;
  } catch {
    return null;
  }
}

/**
 * Offsets of mapping keys that repeat an earlier key of the same mapping, as the YAML
 * library's `uniqueKeys` reports them (scalar keys equal in type and value), in linear time.
 * Iterative, though the nesting pre-scan already bounds the depth.
 */
function duplicateKeys(root: unknown): number[] {
  const found: number[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = pair.key;
        if (isScalar(key)) {
          const id = `${typeof key.value}:${String(key.value)}`;
          if (seen.has(id)) found.push(key.range?.[0] ?? 0);
          else seen.add(id);
        }
        stack.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    } else if (isPair(node)) {
      stack.push(node.key, node.value);
    }
  }
  return found.sort((a, b) => a - b);
}

/**
 * Walks the YAML node tree along `path` and returns the source offset of the deepest node
 * reached: the exact node when the whole path exists, else the nearest parent.
 */
type PairLike = { key?: { value?: unknown; range?: number[] }; value?: unknown };
const keyIndexes = new WeakMap<object, Map<string, PairLike>>();

/**
 * The entries of a mapping by key, built once per mapping: a resource with 20 000 unknown
 * fields gets 20 000 diagnostics, and a linear search for each one made that quadratic.
 * The first entry of a key wins, as in the search it replaces.
 */
function keyIndex(node: { items: unknown[] }): Map<string, PairLike> {
  let index = keyIndexes.get(node);
  if (!index) {
    index = new Map();
    for (const item of node.items) {
      const pair = item as PairLike;
      if (pair && pair.key) {
        const key = String(pair.key.value);
        if (!index.has(key)) index.set(key, pair);
      }
    }
    keyIndexes.set(node, index);
  }
  return index;
}

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
      const pair = keyIndex(n as { items: unknown[] }).get(part);
      if (pair) {
        next = pair.value;
        keyOffset = pair.key?.range?.[0];
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

/** What the pre-scan found that makes an input too costly to parse. */
type ScanFinding = { kind: 'too-deep'; line: number; column: number } | { kind: 'too-many-documents'; count: number };

/**
 * Bounds an input before it is composed: the composer recurses once per nesting level, so
 * 10 000 levels would overflow the stack, and a million `---` would build a million documents.
 *
 * It walks the tokens of the YAML library's own lexer, which is a flat state machine (no
 * recursion, linear time) and knows quoting, comments and block scalars exactly: a `[` inside
 * a string or a `"` inside a plain scalar cannot hide nesting from it, which a hand-written
 * character scan got wrong.
 *
 * Flow nesting is counted directly. Block nesting can only grow with the column of the token
 * that opens it (each level indents, or adds a `- `/`? `/`: ` indicator on the line), and it
 * takes at most one level per column, so a token past column 2 x maxDepth is reported; the
 * composer copes easily with the few hundred levels this lets through.
 */
class InputScanner {
  // The YAML library's lexer, fed piece by piece (it holds back an unfinished line).
  private readonly lexer = new Lexer();
  private offset = 0;
  private line = 1;
  private lineStart = 0;
  private flowDepth = 0;
  private inIndent = true;
  private documents = 0;

  constructor(private readonly limits: LoadLimits) {}

  /** Scans `piece` (more to come when `incomplete`); the first finding, if any. */
  scan(piece: string, incomplete: boolean): ScanFinding | undefined {
    const { limits } = this;
    for (const token of this.lexer.lex(piece, incomplete)) {
      const first = token.charCodeAt(0);
      if (token.length === 1 && (first === 0x02 || first === 0x18 || first === 0x1f)) continue; // zero-width markers
      if (token === '---' && ++this.documents > limits.maxDocuments) return { kind: 'too-many-documents', count: this.documents };
      if (token === '[' || token === '{') {
        if (++this.flowDepth > limits.maxDepth) return this.tooDeep();
      } else if ((token === ']' || token === '}') && this.flowDepth > 0) {
        this.flowDepth--;
      } else if (this.flowDepth === 0 && this.inIndent && first !== 0x20 && first !== 0x0a && first !== 0x0d && first !== 0x23 /* # */) {
        if (this.offset - this.lineStart > 2 * limits.maxDepth) return this.tooDeep();
        // Only the indentation and the indicators that follow it (`- - x`, `? x`, `&anchor`,
        // `!tag`) open levels; a value after a long key sits far right without nesting.
        this.inIndent = token === '-' || token === '?' || token === ':' || first === 0x26 /* & */ || first === 0x21; /* ! */
      }
      for (let i = token.indexOf('\n'); i >= 0; i = token.indexOf('\n', i + 1)) {
        this.line++;
        this.lineStart = this.offset + i + 1;
        this.inIndent = true;
      }
      this.offset += token.length;
    }
    return undefined;
  }

  private tooDeep(): ScanFinding {
    return { kind: 'too-deep', line: this.line, column: this.offset - this.lineStart + 1 };
  }
}

function cleanYamlMessage(message: string): string {
  return message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

function at(file: string, line: number, column: number, code: string, message: string, level: Diagnostic['level'] = 'error'): Diagnostic {
  return { level, code, message, source: { file, line, column } };
}

function tooDeepMessage(limits: Pick<LoadLimits, 'maxDepth'>): string {
  return `document nests deeper than ${limits.maxDepth} levels; no resource needs that, so it was not parsed`;
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
