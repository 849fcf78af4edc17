// The defaults of the config's [limits] section, and the one fixed bound they must stay under.
// A leaf module (it imports nothing): config.ts builds its schema from it, and the code that
// enforces each limit (server/cri-limits.ts, streaming/server/token-store.ts) takes its defaults
// from here, so the config layer never imports the layers above it.

/** gRPC's message limit on the CRI socket, both directions (kubelet uses the same 16 MiB). */
export const GRPC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Per-object CRI bounds: the Kubernetes API server's own limits or the kernel's, so no request
 * kubelet can build for a valid Pod is refused. The fields are server/cri-limits.ts's CriLimits.
 */
export const DEFAULT_CRI_LIMITS = {
  maxAnnotationBytes: 256 * 1024,
  // Each label the API server accepts is at most 253+1+63 bytes of key and 63 of value: 64 KiB
  // is over 170 of the largest possible labels; real pods carry a few dozen short ones.
  maxLabelBytes: 64 * 1024,
  // The kernel's default ARG_MAX (a quarter of the 8 MiB stack) bounds what execve accepts:
  // a larger environment or command line could not start with a default stack anyway.
  maxEnvBytes: 2 * 1024 * 1024,
  maxArgsBytes: 2 * 1024 * 1024,
  maxMounts: 1024,
  maxDevices: 1024,
  maxPortMappings: 4096,
  // 12 of the 16 MiB: the rest is room for per-item framing the estimate does not see.
  maxListedBytes: 12 * 1024 * 1024,
};

/** Outstanding streaming tokens in all: kubelet's cache holds 1000; crib serves more clients per node. */
export const DEFAULT_MAX_TOKENS = 4096;
/** Outstanding tokens per container or pod: far above what kubectl users open within a minute. */
export const DEFAULT_MAX_TOKENS_PER_TARGET = 128;
