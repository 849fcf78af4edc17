// The bounds on what a CRI client may make crib hold, store and list. Two kinds:
//
// Configurable ([limits] in the config file): sizes a workload may legitimately push up, whose
// defaults are the Kubernetes API server's own limits or the kernel's, so no request kubelet can
// build for a valid Pod is refused.
//
// Fixed (below, not configurable): bounds a standard or the kernel already sets, where a larger
// value could never work anyway (a path longer than PATH_MAX, an argument longer than
// MAX_ARG_STRLEN, a fourth nameserver glibc ignores), and counts of fields no real pod uses more
// than a handful of. Raising them would only let a client make the daemon store more.

import { DEFAULT_CRI_LIMITS as CONFIG_DEFAULTS } from '../config/limit-defaults.js';

/** gRPC's message limit on the CRI socket, both directions; defined beside the config defaults it bounds. */
export { GRPC_MAX_MESSAGE_BYTES } from '../config/limit-defaults.js';

export interface CriLimits {
  /** One object's annotations, keys and values summed (apiserver TotalAnnotationSizeLimitB). */
  maxAnnotationBytes: number;
  /** One object's labels, keys and values summed. */
  maxLabelBytes: number;
  /** A container's environment: names and values summed. */
  maxEnvBytes: number;
  /** A command line: command and args (CreateContainer) or cmd (Exec, ExecSync), summed. */
  maxArgsBytes: number;
  maxMounts: number;
  /** devices and CDI devices, each. */
  maxDevices: number;
  maxPortMappings: number;
  /**
   * All pods' and containers' listed metadata together (what ListPodSandbox, ListContainers and
   * the stats lists carry): kept under the gRPC message limit so no list can fail.
   */
  maxListedBytes: number;
}

/** The defaults of the config's [limits] section (config/limit-defaults.ts, where their reasons are). */
export const DEFAULT_CRI_LIMITS: CriLimits = CONFIG_DEFAULTS;

/** The config key of each configurable limit, for error messages. */
export const LIMIT_KEYS: Record<keyof CriLimits, string> = {
  maxAnnotationBytes: 'limits.max_annotation_bytes',
  maxLabelBytes: 'limits.max_label_bytes',
  maxEnvBytes: 'limits.max_env_bytes',
  maxArgsBytes: 'limits.max_args_bytes',
  maxMounts: 'limits.max_mounts',
  maxDevices: 'limits.max_devices',
  maxPortMappings: 'limits.max_port_mappings',
  maxListedBytes: 'limits.max_listed_bytes',
};

/** Fixed bounds, each named after where it comes from. */
export const FIXED_LIMITS = {
  /** PATH_MAX: every path (host, container, log, cgroup parent, working dir, profiles). */
  pathBytes: 4096,
  /** MAX_ARG_STRLEN: the kernel refuses a longer single argument or environment string. */
  argStringBytes: 128 * 1024,
  /** An image reference: distribution caps a name at 255, a tag at 128, a digest is ~135. */
  imageRefBytes: 4096,
  /** glibc and musl read three nameservers; kubelet sends at most three (MaxDNSNameservers). */
  dnsServers: 3,
  /** kubelet's MaxDNSSearchPaths and MaxDNSSearchListChars. */
  dnsSearches: 32,
  dnsSearchChars: 2048,
  dnsOptions: 32,
  /** A search domain or a resolver option: a DNS name's length. */
  dnsEntryBytes: 253,
  sysctls: 256,
  sysctlValueBytes: 4096,
  /** The kernel has 41 capabilities; lists are the ones to add or drop. */
  capabilities: 64,
  capabilityBytes: 64,
  /** maskedPaths / readonlyPaths: kubelet's defaults are about fifteen. */
  maskedPaths: 1024,
  /** NGROUPS_MAX. */
  supplementalGroups: 65536,
  /** cgroup v2 files set through `unified`. */
  unifiedEntries: 256,
  unifiedValueBytes: 4096,
  hugepageLimits: 32,
  /** The kernel's maximum extents per uid/gid map. */
  idMappings: 340,
  /** LOGIN_NAME_MAX. */
  userNameBytes: 256,
  /** Security profile names and SELinux fields. */
  profileBytes: 4096,
  /** Ports named in one PortForward call. */
  portForwardPorts: 1024,
} as const;
