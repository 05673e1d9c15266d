/**
 * HTTP CONNECT on a sidecar's outbound listener (RFC 9110 §9.3.6). An app whose client honours
 * `HTTP_PROXY`/`HTTPS_PROXY`/`grpc_proxy` opens a tunnel to `host:port` for anything that is not
 * plain HTTP/1.1 — HTTPS, TCP services, gRPC — and the sidecar routes the tunnel as the mesh
 * routes that destination, the way Envoy routes what iptables captured for it:
 *
 * - a TCP or TLS service port (the compiler's opaque route: the VirtualService's `tcp` rule, or
 *   its `tls` rule whose sniHosts hold the host, else the service): bytes spliced to an
 *   endpoint of the chosen cluster (tcp/tcp-proxy.ts, counted as `istio_tcp_*`);
 * - an HTTP, HTTP/2 or gRPC service port: the tunnel is terminated and what comes through it is
 *   served by this listener's codecs (HTTP/1.1, or HTTP/2 with prior knowledge), each request
 *   routed by its own authority — route rules, retries, faults and metrics apply as to any
 *   request;
 * - a host outside the registry: passed through to `host:port` under ALLOW_ANY
 *   (PassthroughCluster), refused with 502 under REGISTRY_ONLY (BlackHoleCluster), as plain
 *   HTTP requests are (passthrough.ts).
 *
 * The 200 goes out only once the upstream connected (for a spliced tunnel), so a failure is
 * still a labelled answer (503 UF, UH, UO) rather than a tunnel that closes at once. Listeners
 * other than the outbound capture refuse CONNECT with 403, as Envoy refuses an upgrade or
 * CONNECT no route allows.
 */
import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { Address } from '../../api/proxy-config.js';
import { ResponseFlag } from '../../api/response-flags.js';
import type { ListenerContext, ProxyRuntime } from '../runtime.js';
import { passthroughDestination } from '../upstream/passthrough.js';
import { proxyTcp } from '../tcp/tcp-proxy.js';
import { Replies, type LocalReply } from './local-reply.js';
import { selectVirtualHost, type CompiledRoute } from './route-table.js';
import { chooseDestination } from './router/destination.js';

/** What a CONNECT request becomes. */
export type TunnelPlan =
  | { kind: 'http' }
  | { kind: 'tcp'; cluster: string; originalDestination?: Address }
  | { kind: 'refuse'; reply: LocalReply };

/** The listener's side of a tunnel: how it answers on the raw socket, and its codecs. */
export interface TunnelHost {
  /** A labelled answer on the raw connection, which then closes (listener.ts refuseConnection). */
  refuse(socket: net.Socket, reply: LocalReply): void;
  /** Serves the connection's bytes from here on as HTTP/1.1 or prior-knowledge HTTP/2. */
  serveHttp(socket: net.Socket): void;
}

export const ConnectReplies = {
  notAllowed: { status: 403, details: 'connect_not_allowed', body: 'CONNECT is accepted only on a sidecar\'s outbound listener' },
  badTarget: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'connect_invalid_target', body: 'a CONNECT request target is host:port' },
} as const satisfies Record<string, LocalReply>;

const ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

/** `host:port` (authority-form, RFC 9110 §9.3.6: the port is required), lower-cased; or undefined. */
export function connectTarget(target: string | undefined): { authority: string; host: string; port: number } | undefined {
  if (!target) return undefined;
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9._~!$&'()*+,;=%-]+):(\d{1,5})$/i.exec(target);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port <= 0 || port > 65535) return undefined;
  return { authority: target.toLowerCase(), host: m[1].toLowerCase(), port };
}

/** How the mesh routes a tunnel to `authority` (see the module comment). */
export function planTunnel(rt: ProxyRuntime, ctx: ListenerContext, target: { authority: string; port: number }): TunnelPlan {
  const http = ctx.http;
  if (ctx.listener.direction !== 'outbound' || !http.routeConfigByPort) return { kind: 'refuse', reply: ConnectReplies.notAllowed };
  const tables = rt.current!.routeTables;
  const table = tables.get(String(target.port)) ?? (http.fallbackRouteConfigName !== undefined ? tables.get(http.fallbackRouteConfigName) : undefined);
  const vh = table ? selectVirtualHost(table, target.authority) : undefined;
  if (!vh || vh.routes.length === 0) return { kind: 'refuse', reply: Replies.noRoute };
  const route = vh.routes[0];
  const opaque = vh.routes.length === 1 ? opaqueDestination(rt, route) : undefined;
  if (opaque === undefined) return { kind: 'http' };
  if (opaque.kind === 'refuse') return opaque;
  const { cluster, reach } = opaque;
  if (reach === 'blackhole') return { kind: 'refuse', reply: Replies.registryOnly };
  if (reach === 'endpoints') return { kind: 'tcp', cluster };
  const listener = { host: ctx.listener.address.host, port: ctx.port };
  const dest = passthroughDestination(target.authority, 'http', listener);
  if (dest === 'passthrough_to_self') return { kind: 'refuse', reply: Replies.passthroughToSelf };
  if (dest === 'no_original_destination') return { kind: 'refuse', reply: ConnectReplies.badTarget };
  return { kind: 'tcp', cluster, originalDestination: dest };
}

/**
 * The destination of a virtual host's one route when the tunnel's bytes are opaque to the
 * mesh: a TCP cluster, a pass-through or a black hole. Undefined when the route sends to an
 * HTTP cluster (the tunnel carries HTTP, which is routed request by request).
 */
type Opaque = { kind: 'splice'; cluster: string; reach: 'endpoints' | 'originalDst' | 'blackhole' } | { kind: 'refuse'; reply: LocalReply };

function opaqueDestination(rt: ProxyRuntime, route: CompiledRoute): Opaque | undefined {
  const action = route.action;
  if (action.kind === 'direct') return { kind: 'refuse', reply: { status: action.status, details: 'direct_response', body: action.body ?? '' } };
  if (action.kind !== 'route') return undefined;
  const dest = chooseDestination(action.weighted, rt.random.next());
  const cluster = rt.clusterManager.get(dest.cluster);
  if (!cluster) return { kind: 'refuse', reply: Replies.noCluster };
  const config = cluster.config;
  if (config.kind === 'blackhole') return { kind: 'splice', cluster: dest.cluster, reach: 'blackhole' };
  if (config.kind === 'originalDst' || config.lb.policy === 'PASSTHROUGH') return { kind: 'splice', cluster: dest.cluster, reach: 'originalDst' };
  return config.protocol === 'tcp' ? { kind: 'splice', cluster: dest.cluster, reach: 'endpoints' } : undefined;
}

/**
 * Serves a CONNECT request node's HTTP/1.1 parser handed over with its socket and the bytes
 * that followed its head.
 */
export function serveConnect(rt: ProxyRuntime, ctx: ListenerContext, req: IncomingMessage, socket: net.Socket, head: Buffer, host: TunnelHost): void {
  rt.stats.inc('downstream_rq_connect');
  const target = connectTarget(req.url);
  if (!target) return host.refuse(socket, ConnectReplies.badTarget);
  const plan = planTunnel(rt, ctx, target);
  switch (plan.kind) {
    case 'refuse':
      rt.stats.inc('downstream_rq_connect_refused');
      return host.refuse(socket, plan.reply);
    case 'http':
      // Terminated here: the tunnel's bytes are requests like any other on this listener.
      rt.stats.inc('downstream_rq_connect_http');
      socket.write(ESTABLISHED);
      if (head.length > 0) socket.unshift(head);
      return host.serveHttp(socket);
    case 'tcp': {
      rt.stats.inc('downstream_rq_connect_tcp');
      const idle = ctx.http.streamIdleTimeoutMs;
      proxyTcp(rt, ctx.listener, socket, plan.cluster, {
        originalDestination: plan.originalDestination,
        // Envoy's stream idle timeout applies to a CONNECT stream as to any other.
        idleTimeoutMs: idle,
        early: head,
        onConnected: () => {
          if (socket.destroyed || !socket.writable) return false;
          socket.write(ESTABLISHED);
          return true;
        },
        onRefused: (flag) => {
          if (socket.destroyed || !socket.writable) return false;
          host.refuse(socket, refusalFor(flag));
          return true;
        },
      });
      return;
    }
  }
}

/** A spliced tunnel that could not reach its destination, answered as the router answers the same causes. */
function refusalFor(flag: string): LocalReply {
  switch (flag) {
    case 'UF': return Replies.connectFailure;
    case 'UO': return Replies.overflow;
    case 'NC': return Replies.noCluster;
    case 'NR': return Replies.noRoute;
    default: return Replies.noHealthyUpstream;
  }
}
