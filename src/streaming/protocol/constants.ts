// Names shared by kubelet-compatible clients and servers (k8s.io/api/core/v1 and
// apimachinery's remotecommand / portforward constants). Spelled once here.

export const HEADER_CONNECTION = 'Connection';
export const HEADER_UPGRADE = 'Upgrade';
export const HEADER_PROTOCOL_VERSION = 'X-Stream-Protocol-Version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';
export const SPDY_31 = 'SPDY/3.1';

/** SPDY stream headers. */
export const STREAM_TYPE_HEADER = 'streamType';
export const PORT_HEADER = 'port';
export const PORT_FORWARD_REQUEST_ID_HEADER = 'requestID';

export const StreamType = {
  error: 'error',
  stdin: 'stdin',
  stdout: 'stdout',
  stderr: 'stderr',
  resize: 'resize',
  data: 'data',
} as const;

/** remotecommand subprotocols, newest first (kubelet's preference order). */
export const REMOTE_COMMAND_V1 = 'channel.k8s.io';
export const REMOTE_COMMAND_V2 = 'v2.channel.k8s.io';
export const REMOTE_COMMAND_V3 = 'v3.channel.k8s.io';
export const REMOTE_COMMAND_V4 = 'v4.channel.k8s.io';
export const REMOTE_COMMAND_V5 = 'v5.channel.k8s.io';
export const SUPPORTED_REMOTE_COMMAND_PROTOCOLS: readonly string[] = [
  REMOTE_COMMAND_V4, REMOTE_COMMAND_V3, REMOTE_COMMAND_V2, REMOTE_COMMAND_V1,
];

export const PORT_FORWARD_PROTOCOL_V1 = 'portforward.k8s.io';
export const SUPPORTED_PORT_FORWARD_PROTOCOLS: readonly string[] = [PORT_FORWARD_PROTOCOL_V1];

/**
 * WebSocket subprotocol prefix for SPDY tunneled through WebSocket (Kubernetes' KEP-4006: what
 * kubectl >= 1.31 and critest --websocket-portforward speak): binary messages carry the SPDY
 * byte stream of the named SPDY protocol, e.g. "SPDY/3.1+portforward.k8s.io".
 */
export const SPDY_TUNNEL_PREFIX = `${SPDY_31}+`;
export const TUNNELED_PORT_FORWARD_PROTOCOLS: readonly string[] =
  SUPPORTED_PORT_FORWARD_PROTOCOLS.map((p) => SPDY_TUNNEL_PREFIX + p);

/** metav1.Status reason and cause type kubelet uses for a command's non-zero exit. */
export const NON_ZERO_EXIT_CODE_REASON = 'NonZeroExitCode';
export const EXIT_CODE_CAUSE_TYPE = 'ExitCode';
