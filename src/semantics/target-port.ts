/**
 * Kubernetes' rule for a Service port's `targetPort` (pkg/api/v1/pod FindPort): a name is
 * looked up among the container ports, and a pod without a port of that name is not an
 * endpoint of the Service port; a number is used as it is (absent: the Service port).
 *
 * A pod has an address of its own, so Kubernetes can connect to a number no container port
 * declares. A Sinew `Workload` replica shares the machine's address with every other replica
 * and is reachable only on the ports it declares (the embedded runner gives each declared
 * containerPort an address of its own); a number it does not declare names nothing, and that
 * replica is not an endpoint of the Service port (the registry leaves it out, and `sinew
 * analyze` warns, SNW1014).
 */

/** A Workload's declared container port, as the registry and the analyzer read it. */
export interface DeclaredPort {
  name?: string;
  containerPort: number;
}

/**
 * The containerPort a Workload serves `targetPort` on (a number, a numeric string or a port
 * name; absent means `servicePort`), or undefined when it declares no such port.
 */
export function workloadTargetPort(targetPort: number | string | undefined, servicePort: number, declared: readonly DeclaredPort[]): number | undefined {
  const target = targetPort ?? servicePort;
  if (typeof target === 'string' && !/^\d+$/.test(target)) return declared.find((p) => p.name === target)?.containerPort;
  const number = Number(target);
  return declared.some((p) => p.containerPort === number) ? number : undefined;
}
