// The requests a streaming token stands for, validated by the RPC and kept server-side until
// the client presents the token.
export interface ExecStreamRequest {
  kind: 'exec';
  containerId: string;
  cmd: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface AttachStreamRequest {
  kind: 'attach';
  containerId: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface PortForwardStreamRequest {
  kind: 'portforward';
  podSandboxId: string;
  /** Ports named in the RPC (may be empty: SPDY clients name ports per stream). */
  ports: number[];
}

export type StreamRequest = ExecStreamRequest | AttachStreamRequest | PortForwardStreamRequest;
