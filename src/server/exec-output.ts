// ExecSync answers with stdout and stderr in one gRPC message, and a message over the 16 MiB
// limit fails the whole call (kubelet then sees an error instead of the probe's exit code). The
// monitor already stops capturing each stream at 16 MiB (kubelet's own cap per stream); here
// the two are cut together to fit one response, never failing the call. Each stream keeps its
// head. The budget is shared fairly: a stream smaller than half keeps all of it and the other
// gets the rest; when both are larger, each gets half. The CRI has no field to say output was
// cut, and an in-band marker would corrupt binary output, so the daemon's log says it instead.
import { GRPC_MAX_MESSAGE_BYTES } from './cri-limits.js';

/** Room left for the response's own framing (field tags, lengths, exit code, gRPC header). */
const RESPONSE_OVERHEAD = 64 * 1024;
/** The most stdout and stderr together may carry in one ExecSyncResponse. */
export const EXEC_SYNC_OUTPUT_BUDGET = GRPC_MAX_MESSAGE_BYTES - RESPONSE_OVERHEAD;

export interface FittedOutput {
  stdout: Buffer;
  stderr: Buffer;
  /** Whether anything was cut here. */
  cut: boolean;
}

export function fitExecOutput(stdout: Buffer, stderr: Buffer, budget = EXEC_SYNC_OUTPUT_BUDGET): FittedOutput {
  if (stdout.length + stderr.length <= budget) return { stdout, stderr, cut: false };
  const half = Math.floor(budget / 2);
  let outKeep: number;
  let errKeep: number;
  if (stdout.length <= half) {
    outKeep = stdout.length;
    errKeep = budget - outKeep;
  } else if (stderr.length <= half) {
    errKeep = stderr.length;
    outKeep = budget - errKeep;
  } else {
    outKeep = half;
    errKeep = budget - half;
  }
  return { stdout: stdout.subarray(0, outKeep), stderr: stderr.subarray(0, errKeep), cut: true };
}
