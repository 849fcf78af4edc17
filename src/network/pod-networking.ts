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

/** A pod's network made ready to be attached by crib-pinns while it pins the pod's namespaces. */
export interface PreparedAttach {
  /** crib-pinns options for the pinning call (beside --net). */
  pinnsArgs: readonly string[];
  /** The pod's primary address (PodNetworkStatus.ip), allocated already: its /etc/hosts is
   * written while the pinning runs. */
  ip: string;
  /** Once pinned and attached: the rest of the setup (host ports); the pod's network status. */
  finish(netnsPath: string): Promise<PodNetworkStatus>;
}

export interface PodNetworking {
  /**
   * Optional (the built-in network): allocate the pod's addresses and return what attaches it
   * during the pinning, so a pod costs one helper process; setup() is then not called. A failure
   * after this is undone by teardown(), like a failed setup().
   */
  prepareAttach?(podId: string, opts?: PodSetupOptions): Promise<PreparedAttach>;
  setup(podId: string, netnsPath: string, opts?: PodSetupOptions): Promise<PodNetworkStatus>;
  /**
   * Idempotent; fine when the pod's network namespace is already gone. When it returns the pod
   * has no network any more (no host-port rules, reported without an address); a backend may
   * finish releasing in the background what cannot serve the pod any more (the built-in
   * network's veth delete, and after it the pod's host ports and addresses).
   */
  teardown(podId: string, netnsPath?: string): Promise<void>;
  status(podId: string): Promise<PodNetworkStatus | undefined>;
  /** After a restart: release what pods that no longer exist still hold; returns their ids. */
  reconcile(livePodIds: Iterable<string>): Promise<string[]>;
}
