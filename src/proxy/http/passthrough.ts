/**
 * Traffic to hosts outside the registry (DESIGN.md behaviour 10): under ALLOW_ANY the outbound
 * table's last virtual host routes it to PassthroughCluster, and the request goes to the
 * destination it names; under REGISTRY_ONLY it routes to BlackHoleCluster, which answers 502.
 * A DestinationRule's `loadBalancer.simple: PASSTHROUGH` makes a service's cluster pass through
 * the same way. The router asks here once per request, before its first attempt.
 */
import type { Address } from '../../api/proxy-config.js';
import type { UpstreamCluster } from '../upstream/types.js';
import { passthroughDestination } from '../upstream/passthrough.js';
import { Replies, type LocalReply } from './local-reply.js';
import type { RouterStream } from './router/types.js';

export type PassthroughTarget = { destination?: Address; reply?: undefined } | { reply: LocalReply; destination?: undefined };

const NONE: PassthroughTarget = {};

/**
 * What the router needs to reach `cluster` for this request: the original destination for an
 * originalDst cluster, the 502 of a BlackHoleCluster, nothing for every other cluster.
 */
export function passthroughTarget(stream: RouterStream, cluster: UpstreamCluster): PassthroughTarget {
  const kind = cluster.config.kind;
  if (kind === 'blackhole') return { reply: Replies.registryOnly };
  if (kind !== 'originalDst' && cluster.config.lb.policy !== 'PASSTHROUGH') return NONE;
  const listener = { host: stream.lctx.listener.address.host, port: stream.lctx.port };
  const dest = passthroughDestination(stream.authority, stream.scheme, listener);
  if (dest === 'no_original_destination') return { reply: Replies.noOriginalDestination };
  if (dest === 'passthrough_to_self') return { reply: Replies.passthroughToSelf };
  return { destination: dest };
}
