// The messages between the unpack pool (main thread) and an unpack worker, and how an error
// crosses between them: structured clone keeps only an Error's message, so the class that decides
// the gRPC code travels by name and is rebuilt on the main thread.
import {
  AlreadyExistsError, CribError, DataLossError, DeadlineExceededError, FailedPreconditionError, InternalError,
  InvalidArgumentError, NotFoundError, PermissionDeniedError, ResourceExhaustedError, UnauthenticatedError,
  UnavailableError, UnimplementedError,
} from '../../errors.js';
import type { ExtractOptions, ExtractResult } from './extract-layer.js';

export type ToWorker =
  /**
   * Unpack into `dir`: from the blob `file`, or from the data messages that follow, which the
   * thread also writes to the new file `download` (the temp file of the blob being fetched) and hashes.
   */
  | { t: 'start'; id: number; dir: string; source: { file: string } | { download: string }; opts: ExtractOptions }
  /** The next bytes of a download, in order; each chunk's buffer is the thread's own. */
  | { t: 'data'; id: number; chunks: Uint8Array[] }
  /** Every byte of a download was sent: sync its blob file, report its digest, finish the layer. */
  | { t: 'end'; id: number }
  | { t: 'abort'; id: number; reason: string };

export type FromWorker =
  /**
   * Chunks of the job's data messages were taken by the decompressor: room for more. `n` is the
   * memory they held, the byteLength of each one's buffer (every data chunk has a buffer of its
   * own). `buffers`: data buffers it has inflated, moved back for reading into again
   * (sys/read-buffers.ts).
   */
  | { t: 'ack'; id: number; n: number; buffers?: ArrayBuffer[] }
  /** `n` more uncompressed bytes (for the image-wide budget). */
  | { t: 'bytes'; id: number; n: number }
  /** A download's blob file holds every byte sent, synced and closed; `digest` is their sha256. */
  | { t: 'blob'; id: number; digest: string }
  | { t: 'done'; id: number; result: ExtractResult }
  /** A warning for the daemon's log (id NO_JOB: about the thread, not a job). */
  | { t: 'warn'; id: number; fields: Record<string, unknown>; msg: string }
  /** The job failed; the worker no longer touches its directory. */
  | { t: 'fail'; id: number; error: SerializedError };

/** The id of messages about a thread rather than one of its jobs (job ids start at 1). */
export const NO_JOB = 0;

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

const CLASSES: Record<string, new (message: string) => CribError> = {
  NotFoundError, InvalidArgumentError, AlreadyExistsError, FailedPreconditionError, UnavailableError,
  DeadlineExceededError, PermissionDeniedError, UnauthenticatedError, ResourceExhaustedError, DataLossError,
  UnimplementedError, InternalError,
};

/** The error a worker reported, as the class it was thrown as (a CribError keeps its gRPC code). */
export function deserializeError(e: SerializedError): Error {
  const Cls = CLASSES[e.name];
  if (Cls) return new Cls(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return e.code !== undefined ? Object.assign(err, { code: e.code }) : err;
}
