/**
 * SO_ORIGINAL_DST for a captured connection, from the small Node-API addon in
 * native/original-dst (node has no getsockopt). It is built by `npm run build:native`
 * (node-gyp; `.ci/run` and the Dockerfile run it) and loaded only by a proxy that captures.
 */
import { createRequire } from 'node:module';
import type net from 'node:net';
import type { Address } from '../api/proxy-config.js';
import { installPath } from '../core/install-root.js';
import { ProxyError, ProxyErrorCode } from './errors.js';

export const ORIGINAL_DST_ADDON = installPath('native', 'original-dst', 'build', 'Release', 'original_dst.node');

type Addon = { originalDst(fd: number): { address: string; port: number } | null };
let addon: Addon | undefined;

/** Loads the addon; throws a coded error that says how to build it. */
export function loadOriginalDestination(): (socket: net.Socket) => Address | undefined {
  if (!addon) {
    try {
      addon = createRequire(import.meta.url)(ORIGINAL_DST_ADDON) as Addon;
    } catch (err) {
      throw new ProxyError(ProxyErrorCode.Capture, `transparent capture needs the original-destination addon (${ORIGINAL_DST_ADDON}): run "npm run build:native" (Linux, needs a C compiler): ${(err as Error).message}`, { cause: err });
    }
  }
  const a = addon;
  return (socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (fd === undefined || fd < 0) return undefined;
    const dst = a.originalDst(fd);
    return dst ? { host: dst.address, port: dst.port } : undefined;
  };
}
