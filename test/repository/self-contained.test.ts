/**
 * `git clone && npm ci && npm test` needs nothing beside the clone: no test reads the reference
 * corpus except through test/support/reference-corpus.ts (which gives a skip reason when it is
 * absent), nothing else names it at all, every fixture says where it came from, the fixtures
 * copied from the corpus are still what it holds, and the commands the READMEs show name files
 * the repository has.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { CORPUS_VARIABLE, fixtures, locateReferenceCorpus, referenceCorpus, repoRoot } from '../support/reference-corpus.js';

const HELPER = 'test/support/reference-corpus.ts';
const THIS_FILE = relative(repoRoot, import.meta.filename).split(sep).join('/');

/** Every file below `dir` (relative to the repository, `/`-separated), skipping node_modules. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.name === 'node_modules') continue;
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(relative(repoRoot, full).split(sep).join('/'));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/**
 * Ways of naming the corpus's location: `../shared`, `../../shared/...`, `'..', 'shared'`, and
 * paths inside it such as `shared/istio/...` (also in comments: a clone has no such file to cite).
 */
const corpusLocation = [/\.\.[\\/]+shared\b/, /['"`]\.\.['"`]\s*,\s*['"`]shared['"`]/, /\bshared[\\/](istio|tools|gateway-api|k8s|seeds)\b/];

function namesOfTheCorpus(file: string): string[] {
  const lines = readFileSync(join(repoRoot, file), 'utf8').split('\n');
  return lines.flatMap((line, i) => (corpusLocation.some((re) => re.test(line)) ? [`${file}:${i + 1}: ${line.trim()}`] : []));
}

describe('the test suite needs nothing beside the clone', () => {
  test(`no test names the reference corpus's location except ${HELPER}`, () => {
    const found = filesUnder(join(repoRoot, 'test'))
      .filter((f) => /\.(ts|mjs|js)$/.test(f) && f !== HELPER && f !== THIS_FILE)
      .flatMap(namesOfTheCorpus);
    assert.deepEqual(found, [], `read the corpus through ${HELPER} (referenceCorpus.path, with { skip: referenceCorpus.skip }), and fixtures from the repository`);
  });

  test('a test that reads the reference corpus is skipped, with the reason, when it is absent', () => {
    const unguarded = filesUnder(join(repoRoot, 'test')).filter((f) => {
      if (!/\.ts$/.test(f) || f === HELPER || f === THIS_FILE) return false;
      const text = readFileSync(join(repoRoot, f), 'utf8');
      return /referenceCorpus\.(path|root)\b/.test(text) && !/skip:\s*referenceCorpus\.skip\b/.test(text);
    });
    assert.deepEqual(unguarded, [], 'declare each test or suite that reads referenceCorpus.path() with { skip: referenceCorpus.skip }');
  });

  test('nothing outside the tests names the reference corpus: sources, benchmarks, scripts, examples, samples, docs', () => {
    const files = [
      ...['src', 'bin', 'bench', 'scripts', 'examples', 'samples', 'docs', '.ci'].flatMap((d) => filesUnder(join(repoRoot, d))),
      ...['README.md', 'package.json'].filter((f) => existsSync(join(repoRoot, f))),
    ];
    assert.ok(files.length > 50, `only ${files.length} files scanned`);
    assert.deepEqual(files.flatMap(namesOfTheCorpus), []);
  });
});

// === fixtures and where they came from ===

interface SourceRow {
  /** The README that lists it, relative to the repository. */
  readme: string;
  /** A file, or a folder ending in `/`, relative to the README's folder. */
  here: string;
  from: string;
  /** Where the same file or folder is in the reference corpus, if it was copied from there unchanged. */
  corpus?: string;
}

/**
 * The rows of a README's source table: `| \`here\` | where it came from | commit | \`in the corpus\` |`.
 * Rows whose first cell is not a backquoted path (the header, the separator) are not rows.
 */
function sourceRows(readme: string): SourceRow[] {
  const rows: SourceRow[] = [];
  for (const line of readFileSync(join(repoRoot, readme), 'utf8').split('\n')) {
    if (!line.startsWith('|')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    const here = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1];
    if (!here || cells.length < 4) continue;
    const corpus = /^`([^`]+)`$/.exec(cells[cells.length - 1])?.[1];
    rows.push({ readme, here, from: cells[1], corpus });
  }
  return rows;
}

/** Folders whose every file must be listed, with its source, in a README.md above it. */
const FIXTURE_ROOTS = ['samples', 'test/fixtures'];

/** The README.md files at or above `file`'s folder, up to its fixture root, nearest first. */
function readmesAbove(file: string, root: string): string[] {
  const out: string[] = [];
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(repoRoot, dir, 'README.md'))) out.push(`${dir}/README.md`);
    if (dir === root || dir === '.') return out;
  }
}

const covers = (row: SourceRow, file: string) => {
  const path = relative(dirname(row.readme), file).split(sep).join('/');
  return row.here.endsWith('/') ? path.startsWith(row.here) : path === row.here;
};

describe('fixtures', () => {
  test('every fixture file is listed, with where it came from, in a README.md above it', () => {
    const unlisted: string[] = [];
    let checked = 0;
    for (const root of FIXTURE_ROOTS) {
      for (const file of filesUnder(join(repoRoot, root))) {
        if (file.endsWith('/README.md')) continue;
        checked++;
        const rows = readmesAbove(file, root).flatMap(sourceRows);
        if (!rows.some((row) => covers(row, file) && row.from.length > 0)) unlisted.push(file);
      }
    }
    assert.ok(checked > 100, `only ${checked} fixture files`);
    assert.deepEqual(unlisted, [], 'add a row `| `path` | where it came from (repository, path) | commit | `path in the reference corpus` or - |` to the README.md of its folder');
  });

  test('the fixtures copied from the reference corpus are what it holds', { skip: referenceCorpus.skip }, () => {
    const differ: string[] = [];
    let compared = 0;
    for (const root of FIXTURE_ROOTS) {
      const readmes = filesUnder(join(repoRoot, root)).filter((f) => f.endsWith('/README.md'));
      for (const row of readmes.flatMap(sourceRows)) {
        if (!row.corpus) continue;
        const here = join(dirname(row.readme), row.here);
        const files = row.here.endsWith('/') ? filesUnder(join(repoRoot, here)).filter((f) => !f.endsWith('/README.md')) : [here];
        assert.ok(files.length > 0, `${row.readme}: ${row.here} holds no file`);
        for (const file of files) {
          const inCorpus = referenceCorpus.path(join(row.corpus, relative(here, file)));
          compared++;
          if (!existsSync(inCorpus)) differ.push(`${file}: no ${inCorpus}`);
          else if (!readFileSync(join(repoRoot, file)).equals(readFileSync(inCorpus))) differ.push(`${file} differs from ${inCorpus}`);
        }
      }
    }
    assert.ok(compared > 100, `only ${compared} files compared`);
    assert.deepEqual(differ, [], 'a fixture said to be a copy is not: copy it again (and say so in the README), or list it as changed');
  });
});

// === the READMEs' commands ===

/** Paths a README's code blocks give to `sinew apply|delete|validate|analyze -f` and `sinew up`. */
function pathsInCommands(readme: string): string[] {
  const text = readFileSync(join(repoRoot, readme), 'utf8');
  const blocks = [...text.matchAll(/```[^\n]*\n([\s\S]*?)```/g)].map((m) => m[1]);
  const paths: string[] = [];
  for (const line of blocks.join('\n').split('\n')) {
    for (const m of line.matchAll(/sinew (?:apply|delete|validate|analyze)((?:\s+-f\s+\S+)+)/g)) paths.push(...[...m[1].matchAll(/-f\s+(\S+)/g)].map((f) => f[1]));
    const up = /sinew up((?:\s+[^\s-][^\s]*)+)/.exec(line);
    if (up) paths.push(...up[1].trim().split(/\s+/).filter((p) => !p.startsWith('#')));
  }
  return paths.filter((p) => p !== '-' && !p.startsWith('<'));
}

test("the READMEs' sinew commands name files the repository has (they run from its root)", () => {
  const readmes = ['README.md', ...filesUnder(join(repoRoot, 'examples')).filter((f) => f.endsWith('/README.md'))];
  const named = readmes.flatMap((r) => pathsInCommands(r).map((p) => ({ readme: r, path: p })));
  assert.ok(named.some((n) => n.readme === 'README.md'), 'README.md shows sinew commands with files');
  const missing = named.filter((n) => !existsSync(join(repoRoot, n.path))).map((n) => `${n.readme}: ${n.path}`);
  assert.deepEqual(missing, []);
});

// === the helper ===

describe('locateReferenceCorpus', () => {
  test(`finds the corpus ${CORPUS_VARIABLE} names, by its istio/README.md`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sinew-corpus-'));
    try {
      mkdirSync(join(dir, 'istio'));
      writeFileSync(join(dir, 'istio', 'README.md'), '# Istio material\n');
      const corpus = locateReferenceCorpus({ [CORPUS_VARIABLE]: dir });
      assert.equal(corpus.root, dir);
      assert.equal(corpus.skip, false);
      assert.equal(corpus.path('istio/README.md'), join(dir, 'istio', 'README.md'));
      assert.ok(statSync(corpus.path('istio')).isDirectory());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without it, gives the reason to skip, and path() refuses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sinew-not-a-corpus-'));
    try {
      const absent = locateReferenceCorpus({ [CORPUS_VARIABLE]: dir });
      assert.equal(absent.root, undefined);
      assert.match(String(absent.skip), new RegExp(`no reference corpus at ${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
      assert.throws(() => absent.path('istio'), /reference corpus not available.*\{ skip: referenceCorpus\.skip \}/);
      const off = locateReferenceCorpus({ [CORPUS_VARIABLE]: 'none' });
      assert.equal(off.root, undefined);
      assert.match(String(off.skip), /turned off/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the repository carries its own fixtures', () => {
    assert.ok(existsSync(join(fixtures.samples, 'bookinfo/networking/destination-rule-all.yaml')));
    assert.ok(existsSync(join(fixtures.istio, 'validation/expected.yaml')));
  });
});
