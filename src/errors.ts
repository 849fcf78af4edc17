// The only module that knows gRPC status codes. Every domain throws a CribError subclass; the
// server wrapper turns it into a gRPC status. Anything else that escapes is an Internal error
// whose stack stays in our log and never reaches the client.
import { status } from '@grpc/grpc-js';

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

/** The gRPC status a thrown value maps to, and the message a client may see. */
export function toGrpcStatus(err: unknown): { code: status; details: string } {
  if (err instanceof CribError) return { code: err.grpcCode, details: err.message };
  return { code: status.INTERNAL, details: 'internal error (see the crib daemon log)' };
}

/** errno code of a Node system error, if it is one ("ENOENT", ...). */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}
