// The only module that knows gRPC status codes. Every domain throws a CribError subclass; the
// server wrapper turns it into a gRPC status. An operating-system error (a full disk, a refused
// permission) is mapped here too, by errno (fsError). Anything else that escapes is an Internal
// error whose stack stays in our log and never reaches the client.
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
// crib's own copy of the codes: neither the daemon nor the unpack worker threads (which load this
// module) load @grpc/grpc-js.
import { Status as status } from './grpc-status.js';

export class CribError extends Error {
  constructor(
    readonly grpcCode: status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NotFoundError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.NOT_FOUND, message, options);
  }
}

export class InvalidArgumentError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.INVALID_ARGUMENT, message, options);
  }
}

export class AlreadyExistsError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.ALREADY_EXISTS, message, options);
  }
}

export class FailedPreconditionError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.FAILED_PRECONDITION, message, options);
  }
}

export class UnavailableError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.UNAVAILABLE, message, options);
  }
}

export class DeadlineExceededError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.DEADLINE_EXCEEDED, message, options);
  }
}

export class PermissionDeniedError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.PERMISSION_DENIED, message, options);
  }
}

export class UnauthenticatedError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.UNAUTHENTICATED, message, options);
  }
}

export class ResourceExhaustedError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.RESOURCE_EXHAUSTED, message, options);
  }
}

/** Content that does not match its digest or size: the bytes we got are not the bytes named. */
export class DataLossError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.DATA_LOSS, message, options);
  }
}

export class UnimplementedError extends CribError {
  constructor(message: string) {
    super(status.UNIMPLEMENTED, message);
  }
}

export class InternalError extends CribError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.INTERNAL, message, options);
  }
}

/**
 * The gRPC status a thrown value maps to, and the message a client may see. An operating-system
 * error that no domain translated (a full disk under a pod's files, a read-only state dir) is
 * still answered precisely, through fsError; only a bug's error stays opaque, its stack in our log.
 */
export function toGrpcStatus(err: unknown): { code: status; details: string } {
  const mapped = fsError(err);
  if (mapped instanceof CribError) return { code: mapped.grpcCode, details: mapped.message };
  return { code: status.INTERNAL, details: 'internal error (see the crib daemon log)' };
}

/**
 * How the node's own limits and protections surface: each errno a node operator can act on, with
 * the status that says who must act. A full disk or file table is RESOURCE_EXHAUSTED (kubelet
 * backs off and retries); a refused permission is PERMISSION_DENIED; a read-only filesystem is a
 * FAILED_PRECONDITION of the node. ENOENT is deliberately absent: a file crib itself expected
 * being gone is not the CRI object the caller named being gone, and answering NOT_FOUND would
 * tell kubelet a container or pod no longer exists. Code that knows a path is the thing asked
 * for throws NotFoundError itself.
 */
const ERRNO_STATUS: Record<string, new (message: string, options?: { cause?: unknown }) => CribError> = {
  ENOSPC: ResourceExhaustedError,
  EDQUOT: ResourceExhaustedError,
  EMFILE: ResourceExhaustedError,
  ENFILE: ResourceExhaustedError,
  ENOMEM: ResourceExhaustedError,
  EACCES: PermissionDeniedError,
  EPERM: PermissionDeniedError,
  EROFS: FailedPreconditionError,
};

/** A Node or libc system error: an errno code and the call that failed. */
interface SystemErrorLike {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

function isSystemError(err: unknown): err is SystemErrorLike {
  return typeof err === 'object' && err !== null && !(err instanceof CribError) &&
    typeof (err as { code?: unknown }).code === 'string' && /^E[A-Z0-9]+$/.test((err as { code: string }).code) &&
    (typeof (err as { syscall?: unknown }).syscall === 'string' || typeof (err as { path?: unknown }).path === 'string');
}

/** Where libuv has no words for a code, or words an operator would not search for. */
const REASON_OVERRIDES: Record<string, string> = {
  EDQUOT: 'disk quota exceeded',
  ENFILE: 'too many open files in system',
};

/** The OS's words for an errno code ("no space left on device"), as strerror would put them. */
export function errnoReason(code: string): string {
  const override = REASON_OVERRIDES[code];
  if (override) return override;
  const n = (osConstants.errno as Record<string, number | undefined>)[code];
  return (n === undefined ? undefined : getSystemErrorMap().get(-n)?.[1]) ?? code;
}

/**
 * The error to throw for a failed filesystem (or other system) call: a CribError whose code says
 * who can fix it and whose message names the path and the OS's reason, "write
 * /var/lib/crib/pods/<id>.json: no space left on device". `path` and `action` override what the
 * error itself says (a store names the record it was writing, not its temp file). Anything that
 * is not a system error (a CribError, a bug) is returned unchanged; a system error with an
 * errno not in ERRNO_STATUS becomes INTERNAL, but still with its precise message.
 */
export function fsError(err: unknown, path?: string, action?: string): unknown {
  if (!isSystemError(err)) return err;
  const what = action ?? err.syscall ?? 'file operation';
  const target = path ?? err.path;
  const dest = path === undefined && err.dest !== undefined ? ` -> ${err.dest}` : '';
  // libc.ts and spawn name the subject in the syscall already ("spawn nft").
  const subject = target === undefined || what.endsWith(` ${target}`) ? '' : ` ${target}`;
  const message = `${what}${subject}${dest}: ${errnoReason(err.code)}`;
  const Cls = ERRNO_STATUS[err.code] ?? InternalError;
  return new Cls(message, { cause: err });
}

/** errno code of a Node system error, if it is one ("ENOENT", ...). */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}
