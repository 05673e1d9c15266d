/** Names the installation, the injector and the control plane agree on. */
import { readFileSync } from 'node:fs';
import { installPath } from '../core/install-root.js';

/** The package's version, from this installation's package.json. */
const version = (JSON.parse(readFileSync(installPath('package.json'), 'utf8')) as { version: string }).version;

export const SINEW_VERSION = version;
/** The image the manifests name: build it with the repository's Dockerfile (README, "Kubernetes"). */
export const DEFAULT_IMAGE = `sinew:${version}`;
export const SYSTEM_NAMESPACE = 'sinew-system';
export const CONTROL_PLANE_SERVICE = 'sinew';
/** Where injected proxies find the control plane's push port (Istio: istiod.istio-system.svc:15010). */
export const DEFAULT_CONTROL_PLANE_ADDRESS = `${CONTROL_PLANE_SERVICE}.${SYSTEM_NAMESPACE}.svc:15010`;
export const WEBHOOK_PORT = 15017;

/**
 * The projected service-account token a proxy in a pod presents to the control plane, as
 * Istio's injector mounts it (the `istio-token` volume: audience `istio-ca`, 12 hours, kubelet
 * renews it before it expires).
 */
export const PROXY_TOKEN_AUDIENCE = 'istio-ca';
export const PROXY_TOKEN_VOLUME = 'istio-token';
export const PROXY_TOKEN_DIR = '/var/run/secrets/tokens';
export const PROXY_TOKEN_PATH = `${PROXY_TOKEN_DIR}/istio-token`;
export const PROXY_TOKEN_EXPIRATION_SECONDS = 43_200;

/** The `istio-token` volume of a pod with a proxy. */
export function proxyTokenVolume(): { name: string; projected: { sources: { serviceAccountToken: { audience: string; expirationSeconds: number; path: string } }[] } } {
  return { name: PROXY_TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience: PROXY_TOKEN_AUDIENCE, expirationSeconds: PROXY_TOKEN_EXPIRATION_SECONDS, path: 'istio-token' } }] } };
}

/** The proxy container's mount of `proxyTokenVolume()`. */
export const PROXY_TOKEN_MOUNT = { name: PROXY_TOKEN_VOLUME, mountPath: PROXY_TOKEN_DIR };

/** The ingress gateway's service account (Istio: istio-ingressgateway-service-account). */
export const GATEWAY_SERVICE_ACCOUNT = 'sinew-ingressgateway-service-account';
