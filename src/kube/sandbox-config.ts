// The PodSandboxConfig kubelet's kuberuntime manager would send for a pod: metadata (name,
// namespace, uid, attempt), hostname (the pod's, unless it shares the node's network), the DNS
// config, a port mapping for every container port (the runtime maps those with a hostPort), the
// log directory /var/log/pods/<namespace>_<name>_<uid>, kubelet's identity labels over the pod's
// labels, the pod's annotations, and the Linux namespace modes and pod security context.
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node/dist/gen/models/V1Pod.js';
import { podDnsConfig } from './dns.js';
import { sandboxLabels, type PodIdentity } from './labels.js';

export const DEFAULT_POD_LOG_ROOT = '/var/log/pods';

export function podLogDirectory(logRoot: string, pod: PodIdentity): string {
  return join(logRoot, `${pod.namespace}_${pod.name}_${pod.uid}`);
}

/** The hostname kubelet gives a pod: spec.hostname, else its name cut to 63 characters. */
export function podHostname(pod: V1Pod): string {
  return pod.spec!.hostname ?? pod.metadata!.name!.slice(0, 63).replace(/[-.]+$/, '');
}

export interface NamespaceOptions {
  network: 'POD' | 'NODE';
  pid: 'POD' | 'CONTAINER' | 'NODE';
  ipc: 'POD' | 'NODE';
}

export function namespaceOptions(pod: V1Pod): NamespaceOptions {
  const s = pod.spec!;
  return {
    network: s.hostNetwork ? 'NODE' : 'POD',
    pid: s.hostPID ? 'NODE' : s.shareProcessNamespace ? 'POD' : 'CONTAINER',
    ipc: s.hostIPC ? 'NODE' : 'POD',
  };
}

export function portMappings(pod: V1Pod): { protocol: string; containerPort: number; hostPort: number; hostIp: string }[] {
  return pod.spec!.containers.flatMap((c) => (c.ports ?? []).map((p) => ({
    protocol: p.protocol ?? 'TCP', containerPort: p.containerPort, hostPort: p.hostPort ?? 0, hostIp: p.hostIP ?? '',
  })));
}

export function sandboxConfig(pod: V1Pod, id: PodIdentity, opts: { logRoot: string; hostResolvConf: string; attempt?: number }): Record<string, unknown> {
  const spec = pod.spec!;
  const sc = spec.securityContext;
  const privileged = [...(spec.initContainers ?? []), ...spec.containers].some((c) => c.securityContext?.privileged === true);
  const dns = podDnsConfig(spec, opts.hostResolvConf);
  return {
    metadata: { name: id.name, namespace: id.namespace, uid: id.uid, attempt: opts.attempt ?? 0 },
    hostname: spec.hostNetwork ? '' : podHostname(pod),
    logDirectory: podLogDirectory(opts.logRoot, id),
    dnsConfig: dns,
    portMappings: portMappings(pod),
    labels: sandboxLabels(id, pod.metadata?.labels),
    annotations: { ...(pod.metadata?.annotations ?? {}) },
    linux: {
      cgroupParent: '',
      sysctls: Object.fromEntries((sc?.sysctls ?? []).map((s) => [s.name, s.value])),
      securityContext: {
        namespaceOptions: namespaceOptions(pod),
        ...(sc?.runAsUser !== undefined ? { runAsUser: { value: String(sc.runAsUser) } } : {}),
        ...(sc?.runAsGroup !== undefined ? { runAsGroup: { value: String(sc.runAsGroup) } } : {}),
        supplementalGroups: (sc?.supplementalGroups ?? []).map(String),
        privileged,
        readonlyRootfs: false,
      },
    },
  };
}
