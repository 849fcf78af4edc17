// What the server reports on a remotecommand error stream when the command ends, byte-for-byte
// as kubelet does (pkg/kubelet/cri/streaming/remotecommand): v4 sends a metav1.Status as JSON
// (success included); v1–v3 send only the failure message as plain text and nothing on success.
import {
  EXIT_CODE_CAUSE_TYPE,
  NON_ZERO_EXIT_CODE_REASON,
  REMOTE_COMMAND_V4,
  REMOTE_COMMAND_V5,
} from './constants.js';

/** The outcome of an exec/attach: an exit code, or a failure to run the command at all. */
export type RemoteCommandResult =
  | { exitCode: number; /** How the runtime describes the exit; default "exit status N". */ description?: string }
  | { error: Error | string };

interface StatusCause {
  reason?: string;
  message?: string;
}

/** metav1.Status with Go's field order and omitempty behaviour (metadata always present). */
export interface MetaV1Status {
  metadata: Record<string, never>;
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes?: StatusCause[] };
  code?: number;
}

export function statusForResult(result: RemoteCommandResult): MetaV1Status {
  if ('error' in result) {
    const text = `error executing command in container: ${typeof result.error === 'string' ? result.error : result.error.message}`;
    return {
      metadata: {},
      status: 'Failure',
      message: `Internal error occurred: ${text}`,
      reason: 'InternalError',
      details: { causes: [{ message: text }] },
      code: 500,
    };
  }
  const code = result.exitCode;
  if (!Number.isInteger(code)) throw new RangeError(`exit code ${code} is not an integer`);
  if (code === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${result.description ?? `exit status ${code}`}`,
    reason: NON_ZERO_EXIT_CODE_REASON,
    details: { causes: [{ reason: EXIT_CODE_CAUSE_TYPE, message: String(code) }] },
  };
}

/**
 * The bytes for the error stream under the given subprotocol; empty when nothing is to be sent
 * (success under v1–v3).
 */
export function encodeExecStatus(protocol: string, result: RemoteCommandResult): Buffer {
  const status = statusForResult(result);
  if (protocol === REMOTE_COMMAND_V4 || protocol === REMOTE_COMMAND_V5) {
    return Buffer.from(JSON.stringify(status), 'utf8');
  }
  if (status.status === 'Success') return Buffer.alloc(0);
  return Buffer.from(status.message ?? '', 'utf8');
}
