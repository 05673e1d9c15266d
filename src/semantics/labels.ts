/**
 * Label selectors as Kubernetes and Istio apply them: a selector is a map of labels, and it
 * selects a set of labels that carries every one of them with the same value (Kubernetes'
 * equality-based `matchLabels`; Istio's workloadSelector, subset labels and sourceLabels).
 */

export type Labels = Readonly<Record<string, string>>;

/**
 * Whether `labels` carry every label of `selector`. An absent selector selects everything,
 * as an Istio resource without a workloadSelector applies to every workload in its scope (and
 * so does an empty one: Kubernetes' labels.SelectorFromSet of an empty set is Everything).
 */
export function selectorMatches(selector: Labels | null | undefined, labels: Labels | null | undefined): boolean {
  if (!selector) return true;
  for (const key in selector) {
    if (labels?.[key] !== selector[key]) return false;
  }
  return true;
}

/**
 * Whether a Kubernetes Service's selector selects a workload with `labels`. A Service with no
 * selector (or an empty one) selects no workload: its endpoints are managed by hand
 * (EndpointSlices written by someone else), so it has none from the mesh's workloads.
 */
export function serviceSelects(selector: Labels | null | undefined, labels: Labels | null | undefined): boolean {
  if (!selector) return false;
  let any = false;
  for (const key in selector) {
    if (labels?.[key] !== selector[key]) return false;
    any = true;
  }
  return any;
}
