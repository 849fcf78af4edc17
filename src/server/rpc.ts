// One wrapper around every RPC: entry/exit logging, error mapping to gRPC status (errors.ts is the
// only place that knows codes), and UNIMPLEMENTED for every method whose handler has not landed —
// never a fake success. Handlers are plain async functions and hold no boilerplate. Status
// messages often quote the request (a name, a path, an id): this is the one place they are cut
// to a bounded size before they reach the client.
import { CribError, UnimplementedError, toGrpcStatus } from '../errors.js';
import { Status } from '../grpc-status.js';
import { log } from '../log.js';
import { truncateText } from '../truncate.js';
import type { CancelReason, MethodImplementation, ServerCall, ServiceDefinition } from './grpc-server.js';

export interface RpcContext {
  /** Aborted when the client cancels or its deadline passes. */
  signal: AbortSignal;
  /** Milliseconds left before the client's deadline, if it set one. */
  deadlineMs(): number | undefined;
}

// Request as decoded (defaults filled in) and response as we may write it, per method.
type MethodOf<D, K extends keyof D> = D[K] extends {
  requestDeserialize: (bytes: Buffer) => infer ReqOut;
  responseSerialize: (value: infer Res) => Buffer;
}
  ? { req: ReqOut; res: Res }
  : never;

export type UnaryHandler<Req, Res> = (req: Req, ctx: RpcContext) => Promise<Res>;
export type StreamingHandler<Req, Res> = (
  req: Req,
  ctx: RpcContext,
  send: (res: Res) => void,
) => Promise<void>;

// The generated definitions type responseStream as plain boolean, so the CRI's server-streaming
// methods are told apart by name (all are Stream*, plus GetContainerEvents).
type StreamingName = `Stream${string}` | 'GetContainerEvents';

export type ServiceHandlers<D extends ServiceDefinition> = {
  [K in keyof D as string extends K ? never : K]?: K extends StreamingName
    ? StreamingHandler<MethodOf<D, K>['req'], MethodOf<D, K>['res']>
    : UnaryHandler<MethodOf<D, K>['req'], MethodOf<D, K>['res']>;
};

/**
 * One call's context. A cancel counts only while the handler runs (the server tells of none
 * after the call answered). The AbortController is made only when a handler asks for the signal:
 * most never do.
 */
class CallContext implements RpcContext {
  private controller: AbortController | undefined;
  private cancelled: CancelReason | undefined;

  constructor(private readonly call: ServerCall) {
    call.onCancel((reason) => {
      this.cancelled = reason;
      this.controller?.abort(cancelledReason(reason));
    });
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(cancelledReason(this.cancelled));
    }
    return this.controller.signal;
  }

  deadlineMs(): number | undefined {
    const at = this.call.deadlineAt;
    return at === undefined ? undefined : Math.max(0, at - Date.now());
  }
}

function cancelledReason(reason: CancelReason): Error {
  if (reason === 'deadline') return new Error("the call's deadline passed");
  if (reason === 'overflow') return new Error('the client stopped reading the stream');
  if (reason === 'unsendable') return new Error('a response could not be sent (see the daemon log)');
  return new Error('the client cancelled the call');
}

/** The status a failed call answers with; its message is bounded whatever it quotes. */
export function failureStatus(err: unknown): { code: Status; details: string } {
  const { code, details } = toGrpcStatus(err);
  return { code, details: truncateText(details) };
}

function logFailure(method: string, err: unknown, ms: number): void {
  if (err instanceof CribError) {
    log.info({ method, ms, code: Status[err.grpcCode], err: err.message }, 'rpc failed');
  } else {
    log.error({ method, ms, err }, 'rpc failed with an unexpected error');
  }
}

/** Told about calls (the metrics' and the memory trim's hook). */
export interface RpcObserver {
  /**
   * A unary call began. Streaming calls are told only when they end: GetContainerEvents stays
   * open for as long as kubelet runs.
   */
  unaryStarted?(method: string): void;
  /** A call ended: its outcome, how long it took, and whether it was unary. */
  ended(method: string, code: Status, seconds: number, unary: boolean): void;
}

/** A full implementation of a service: every method answers, implemented or UNIMPLEMENTED. */
export function implementService<D extends ServiceDefinition>(
  serviceName: string,
  definition: D,
  handlers: ServiceHandlers<D>,
  observe?: RpcObserver,
): Record<string, MethodImplementation> {
  const told = (rpc: string, tell: (o: RpcObserver) => void): void => {
    if (!observe) return;
    try {
      tell(observe);
    } catch (err) {
      log.warn({ method: rpc, err }, 'the RPC observer failed');
    }
  };
  const ended = (rpc: string, code: Status, started: number, unary: boolean): void =>
    told(rpc, (o) => o.ended(rpc, code, (Date.now() - started) / 1000, unary));
  const impl: Record<string, MethodImplementation> = {};
  for (const [name, method] of Object.entries(definition)) {
    const rpc = `${serviceName}/${name}`;
    const handler = (handlers as Record<string, unknown>)[name] as
      | UnaryHandler<unknown, unknown>
      | StreamingHandler<unknown, unknown>
      | undefined;
    const run =
      handler ??
      (async () => {
        throw new UnimplementedError(`crib does not implement ${rpc} yet`);
      });
    const unary = !method.responseStream;
    const failed = (call: ServerCall, err: unknown, started: number): void => {
      logFailure(rpc, err, Date.now() - started);
      const { code, details } = failureStatus(err);
      ended(rpc, code, started, unary);
      call.end(code, details);
    };
    if (method.responseStream) {
      impl[name] = (call) => {
        const started = Date.now();
        const ctx = new CallContext(call);
        (run as StreamingHandler<unknown, unknown>)(call.request, ctx, (res) => call.write(res)).then(
          () => {
            if (log.isLevelEnabled('debug')) log.debug({ method: rpc, ms: Date.now() - started }, 'rpc done');
            ended(rpc, Status.OK, started, unary);
            call.end(Status.OK);
          },
          (err: unknown) => failed(call, err, started),
        );
      };
    } else {
      impl[name] = (call) => {
        const started = Date.now();
        told(rpc, (o) => o.unaryStarted?.(rpc));
        const ctx = new CallContext(call);
        (run as UnaryHandler<unknown, unknown>)(call.request, ctx).then(
          (res) => {
            // The entry is built only when it will be written: most calls are at info level.
            if (log.isLevelEnabled('debug')) log.debug({ method: rpc, ms: Date.now() - started }, 'rpc done');
            ended(rpc, Status.OK, started, unary);
            call.sendUnary(res);
          },
          (err: unknown) => failed(call, err, started),
        );
      };
    }
  }
  return impl;
}

/** Items per message on the CRI's Stream* calls: well under gRPC's message size limit. */
const STREAM_BATCH = 100;

/**
 * Send `items` as a Stream* response in batches. The CRI asks for lists of at least one item,
 * so nothing is sent for an empty list.
 */
export function sendInBatches<T, M>(items: T[], send: (msg: M) => void, wrap: (batch: T[]) => M): void {
  for (let i = 0; i < items.length; i += STREAM_BATCH) send(wrap(items.slice(i, i + STREAM_BATCH)));
}
