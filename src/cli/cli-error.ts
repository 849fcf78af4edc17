// What the `crib` command says when something fails: one sentence naming what went wrong and
// what to do, on stderr, with an exit code a script can test. gRPC errors from the daemon are
// turned into such sentences here, once, so every verb reads the same.
import { status as grpcStatus } from '@grpc/grpc-js';

/** Exit codes: 1 the operation failed, 2 the command line was wrong, 3 no daemon to talk to. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

export class CliError extends Error {
  constructor(message: string, readonly exitCode = EXIT_FAILURE) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}

interface GrpcLikeError {
  code?: number;
  details?: string;
  message?: string;
}

function isGrpcError(err: unknown): err is GrpcLikeError & Error {
  return err instanceof Error && typeof (err as GrpcLikeError).code === 'number' && 'details' in err;
}

/** A sentence for any error a verb let through; `address` is the daemon's, for the hints. */
export function explain(err: unknown, address: string): CliError {
  if (err instanceof CliError) return err;
  if (isGrpcError(err)) {
    const details = err.details || err.message || 'no details';
    switch (err.code) {
      case grpcStatus.UNAVAILABLE:
        if (/EACCES|permission denied/i.test(details)) {
          return new CliError(`permission denied on the crib socket ${address}: run as root or as a member of the socket's group (grpc.socket_group).`, EXIT_UNREACHABLE);
        }
        const connect = /connect (E[A-Z]+) (\S+?)\.?(?:\s|$)/.exec(details);
        const why = connect ? (connect[1] === 'ENOENT' ? `no socket at ${connect[2]}` : `${connect[1]} on ${connect[2]}`) : details;
        return new CliError(
          `cannot reach the crib daemon at ${address} (${why}). Is it running? Start it with "crib daemon" ` +
            '(or "systemctl start crib"), or point --address (or --config) at its socket.',
          EXIT_UNREACHABLE,
        );
      case grpcStatus.DEADLINE_EXCEEDED:
        return new CliError(`the crib daemon at ${address} did not answer in time (${details}); try again, or raise --timeout.`);
      case grpcStatus.UNIMPLEMENTED:
        return new CliError(`the crib daemon at ${address} does not support this (${details}); is the daemon older than this crib command?`);
      case grpcStatus.NOT_FOUND:
        return new CliError(`not found: ${details}.`);
      case grpcStatus.INVALID_ARGUMENT:
        return new CliError(`the daemon refused the request: ${details}. Fix the argument or config it names and try again.`);
      default:
        return new CliError(`the daemon failed: ${details} (${grpcStatus[err.code!] ?? err.code}).`);
    }
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' && e.path) return new CliError(`no such file: ${e.path}.`);
  if (e?.code === 'EACCES' && e.path) return new CliError(`permission denied reading ${e.path}: run as root or fix its permissions.`);
  return new CliError(err instanceof Error ? err.message : String(err));
}
