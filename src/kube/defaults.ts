/** Names the installation, the injector and the control plane agree on. */
import { readFileSync } from 'node:fs';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const SINEW_VERSION = version;
/** The image the manifests name: build it with the repository's Dockerfile (README, "Kubernetes"). */
export const DEFAULT_IMAGE = `sinew:${version}`;
export const SYSTEM_NAMESPACE = 'sinew-system';
export const CONTROL_PLANE_SERVICE = 'sinew';
/** Where injected proxies find the control plane's push port (Istio: istiod.istio-system.svc:15010). */
export const DEFAULT_CONTROL_PLANE_ADDRESS = `${CONTROL_PLANE_SERVICE}.${SYSTEM_NAMESPACE}.svc:15010`;
export const WEBHOOK_PORT = 15017;
