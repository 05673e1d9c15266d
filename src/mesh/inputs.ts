/**
 * The manifest paths `sinew up` reads, without its own state directory. `sinew up` with no
 * path reads `.`, and keeps its state in `./.sinew`: read as manifests, the JSON files the
 * mesh writes there (its config, its process records) made every second start fail with a
 * page of errors and "nothing was started". A directory that holds the state directory is
 * read entry by entry instead, leaving that one out; the loader reads a directory's
 * `.yaml`, `.yml` and `.json` files (config/load.ts), and so does this.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export async function manifestInputs(paths: readonly string[], stateDir: string): Promise<string[]> {
  const excluded = resolve(stateDir);
  const out: string[] = [];
  for (const path of paths) {
    const absolute = resolve(path);
    if (absolute === excluded) continue;
    const holdsStateDir = excluded.startsWith(absolute.endsWith(sep) ? absolute : absolute + sep);
    if (!holdsStateDir || !(await isDirectory(absolute))) {
      out.push(path);
      continue;
    }
    const entries = (await readdir(absolute, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const inside: string[] = [];
    for (const entry of entries) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) inside.push(child);
      else if (MANIFEST_EXTENSIONS.has(extname(entry.name).toLowerCase())) inside.push(child);
    }
    out.push(...(await manifestInputs(inside, excluded)));
  }
  return out;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
