/**
 * V8 flags of the control-plane process: `sinew up` starts it with them (as does
 * bench/controlplane-memory.ts), and the Kubernetes install gives them to its Deployment as
 * NODE_OPTIONS. V8 sizes its heap when the process starts, so the command cannot set them on
 * itself. A young generation of 16 MB semi-spaces, which V8 grows to while the control plane
 * loads its modules and reads a config, is 32 MB of resident memory by itself: with 2 MB
 * semi-spaces an idle control plane took ~85-89 MB instead of ~101 MB, and a 15 MB apply
 * peaked lower too (with the apply's garbage bound, src/core/garbage-bound.ts, it now peaks at
 * ~135 MB, 9x the config; run by hand without the flag, ~166 MB). Pushes to 600 proxies were as
 * fast either way (bench/controlplane.ts --services 300, in-process), and that bench's RSS
 * ~55 MB lower.
 *
 * Not set, though it bounds the apply's peak further: `--heap-growing-percent=20` (a full
 * collection once the old generation grows 20% past what survived the last one, instead of
 * up to ~4x) took the 15 MB apply's peak to 150-160 MB, but made every full collection come
 * sooner for as long as the process lives: pushes to 600 proxies took ~2x as long (10%:
 * 1.2-3.7x). Set only while an apply is read it did not help (~182 MB): the limit V8 had
 * already set before the apply holds until the next full collection. The allocation-site
 * pretenuring the control plane also turns off is set by the command itself
 * (src/cli/controlplane.ts).
 */
export const CONTROL_PLANE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
