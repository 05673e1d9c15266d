/**
 * Istio's exportTo: which namespaces see a resource (a VirtualService, DestinationRule,
 * ServiceEntry or Service). Absent or empty means everywhere (meshConfig's default `*`); `*`
 * everywhere; `.` the resource's own namespace; `~` nowhere; any other entry that namespace.
 */
export function isExportedTo(exportTo: readonly string[] | undefined, ownerNamespace: string, clientNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*') return true;
    if (e === '.' && ownerNamespace === clientNamespace) return true;
    if (e === clientNamespace) return true;
  }
  return false;
}
