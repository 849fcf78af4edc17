// What the sandbox code calls, whichever network backs it: the built-in bridge (PodNetwork) or
// CNI plugins (CniNetwork).
import type { PortMapping } from '../gen/runtime/v1/PortMapping.js';
import type { HostPortMapping } from './host-ports.js';

export interface PodSetupOptions {
  portMappings?: readonly PortMapping[];
  /** The pod's hostname (for logs; CNI plugins do not need it). */
  hostname?: string;
  /** Kubernetes pod name and namespace, passed to CNI plugins as K8S_POD_NAME/K8S_POD_NAMESPACE. */
  podName?: string;
  podNamespace?: string;
}

export interface PodNetworkStatus {
  /** The pod's primary (IPv4 if it has one) address: CRI PodSandboxNetworkStatus.ip. */
  ip: string;
  prefixLength: number;
  gateway: string;
  /** Dual-stack: the IPv6 address (CRI additional_ips), its prefix length and gateway. */
  ip6?: string;
  prefixLength6?: number;
  gateway6?: string;
  /** Interface inside the pod. */
  interface: string;
  /** Host end of the pod's veth pair, when known. */
  hostInterface?: string;
  portMappings: HostPortMapping[];
}

export interface PodNetworking {
  setup(podId: string, netnsPath: string, opts?: PodSetupOptions): Promise<PodNetworkStatus>;
  /** Idempotent; fine when the pod's network namespace is already gone. */
  teardown(podId: string, netnsPath?: string): Promise<void>;
  status(podId: string): Promise<PodNetworkStatus | undefined>;
  /** After a restart: release what pods that no longer exist still hold; returns their ids. */
  reconcile(livePodIds: Iterable<string>): Promise<string[]>;
}
