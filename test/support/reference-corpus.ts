/**
 * Where the tests find Istio's material: the repository's own copies, always, and the reference
 * corpus, when it is there.
 *
 * The repository carries every fixture its tests need: Istio's samples in `samples/` (unchanged,
 * at Istio's own paths) and the validation and acceptance material in `test/fixtures/istio/`
 * (laid out as the corpus's `istio/` folder is). Each folder's README.md names where every file
 * came from, and test/repository/self-contained.test.ts checks that it does.
 *
 * The reference corpus is a read-only folder of the same material in full (all of Istio's
 * samples and task YAML, the CRD schemas, ...) that a checkout finds beside it as `../shared`,
 * or wherever `SINEW_REFERENCE_CORPUS` names (`SINEW_REFERENCE_CORPUS=none` runs the suite as
 * a fresh clone would). A clone does not have it. Tests that check against the whole corpus
 * run in addition when it is present, and are reported as skipped, with the reason, when not:
 *
 *   import { referenceCorpus } from '../support/reference-corpus.js';
 *
 *   test('every Istio sample validates', { skip: referenceCorpus.skip }, async (t) => {
 *     for (const file of yamlFilesUnder(referenceCorpus.path('istio/data/istio/samples'))) await t.test(...);
 *   });
 *
 * This module is the only place a test may name the corpus's location; the guard test fails
 * on any other.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');

/** The repository's own Istio material: every test can rely on it. */
export const fixtures = {
  /** Istio's samples (`samples/bookinfo/networking/...`), as users apply them. */
  samples: join(repoRoot, 'samples'),
  /** Validation cases, acceptance cases and configs, CRD test data, istio.io task YAML. */
  istio: join(repoRoot, 'test/fixtures/istio'),
} as const;

export interface ReferenceCorpus {
  /** The corpus's folder, or undefined when it is not there. */
  readonly root: string | undefined;
  /** `false` when the corpus is present; otherwise why its tests are skipped (for `{ skip }`). */
  readonly skip: string | false;
  /**
   * The absolute path of `relative` (e.g. `istio/data/istio/samples`) in the corpus. Throws when
   * the corpus is absent: call it only inside a test or suite declared with `{ skip: referenceCorpus.skip }`.
   */
  path(relative: string): string;
}

/** The environment variable naming the corpus's folder, or `none` for no corpus. */
export const CORPUS_VARIABLE = 'SINEW_REFERENCE_CORPUS';

/** Finds the corpus: `$SINEW_REFERENCE_CORPUS`, else `shared` beside the repository. */
export function locateReferenceCorpus(env: NodeJS.ProcessEnv = process.env): ReferenceCorpus {
  const named = env[CORPUS_VARIABLE];
  let root: string | undefined;
  let skip: string | false = false;
  if (named === 'none') {
    skip = `the reference corpus is turned off (${CORPUS_VARIABLE}=none)`;
  } else {
    const candidate = named ? (isAbsolute(named) ? named : resolve(named)) : resolve(repoRoot, '..', 'shared');
    // Its istio/README.md lists the snapshots: a folder without it is not the corpus.
    if (existsSync(join(candidate, 'istio', 'README.md'))) root = candidate;
    else
      skip = named
        ? `no reference corpus at ${candidate} (${CORPUS_VARIABLE}); the repository's own fixtures were tested`
        : `no reference corpus beside this checkout (${candidate}); the repository's own fixtures were tested. Set ${CORPUS_VARIABLE} to its folder to run these`;
  }
  return {
    root,
    skip,
    path(relative: string): string {
      if (root === undefined) throw new Error(`reference corpus not available: ${skip}. Declare the test with { skip: referenceCorpus.skip }`);
      return join(root, relative);
    },
  };
}

export const referenceCorpus: ReferenceCorpus = locateReferenceCorpus();
