/** A field path inside a resource: `['spec', 'http', 0, 'route']`. */
export type FieldPath = readonly (string | number)[];

/** Formats a path the way kubectl and Istio print it: `spec.http[0].route`. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}
