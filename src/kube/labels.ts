// The labels and annotations kubelet puts on sandboxes and containers. Tools that read a node
// (crictl, log shippers, kubelet itself after a restart) find pods and containers by these keys,
// so their names and meanings follow kubelet's exactly.
export const POD_NAME = 'io.kubernetes.pod.name';
export const POD_NAMESPACE = 'io.kubernetes.pod.namespace';
export const POD_UID = 'io.kubernetes.pod.uid';
export const CONTAINER_NAME = 'io.kubernetes.container.name';
export const CONTAINER_HASH = 'io.kubernetes.container.hash';
export const CONTAINER_RESTART_COUNT = 'io.kubernetes.container.restartCount';
export const CONTAINER_TERMINATION_MESSAGE_PATH = 'io.kubernetes.container.terminationMessagePath';
export const CONTAINER_TERMINATION_MESSAGE_POLICY = 'io.kubernetes.container.terminationMessagePolicy';
export const CONTAINER_PORTS = 'io.kubernetes.container.ports';
export const POD_TERMINATION_GRACE_PERIOD = 'io.kubernetes.pod.terminationGracePeriod';
/** crib's own: marks what `crib kube play` made, so `kube down` can find all of it. */
export const PLAYED_BY = 'crib.kube.played';

export interface PodIdentity {
  name: string;
  namespace: string;
  uid: string;
}

/** The pod's labels plus kubelet's three identity labels (which win over the pod's own). */
export function sandboxLabels(pod: PodIdentity, podLabels: Record<string, string> | undefined): Record<string, string> {
  return { ...(podLabels ?? {}), [POD_NAME]: pod.name, [POD_NAMESPACE]: pod.namespace, [POD_UID]: pod.uid, [PLAYED_BY]: 'true' };
}

export function containerLabels(pod: PodIdentity, containerName: string): Record<string, string> {
  return { [POD_NAME]: pod.name, [POD_NAMESPACE]: pod.namespace, [POD_UID]: pod.uid, [CONTAINER_NAME]: containerName, [PLAYED_BY]: 'true' };
}

export interface ContainerAnnotationInput {
  spec: unknown;
  restartCount: number;
  terminationMessagePath: string;
  terminationMessagePolicy: string;
  terminationGracePeriodSeconds: number;
  ports?: { containerPort: number; protocol?: string; name?: string; hostPort?: number }[];
}

export function containerAnnotations(c: ContainerAnnotationInput): Record<string, string> {
  const out: Record<string, string> = {
    [CONTAINER_HASH]: containerHash(c.spec),
    [CONTAINER_RESTART_COUNT]: String(c.restartCount),
    [CONTAINER_TERMINATION_MESSAGE_PATH]: c.terminationMessagePath,
    [CONTAINER_TERMINATION_MESSAGE_POLICY]: c.terminationMessagePolicy,
    [POD_TERMINATION_GRACE_PERIOD]: String(c.terminationGracePeriodSeconds),
  };
  if (c.ports && c.ports.length > 0) {
    out[CONTAINER_PORTS] = JSON.stringify(c.ports.map((p) => ({
      ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, protocol: p.protocol ?? 'TCP', ...(p.hostPort ? { hostPort: p.hostPort } : {}),
    })));
  }
  return out;
}

/**
 * A 32-bit FNV-1a hash of the container's spec, in hex, as kubelet's annotation carries one: it
 * changes whenever the spec does. (kubelet hashes its Go printing of the struct; the value here
 * is of the spec's JSON, so the two never compare equal, only each with itself.)
 */
export function containerHash(spec: unknown): string {
  const bytes = Buffer.from(JSON.stringify(spec) ?? '', 'utf8');
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16);
}
