// One wrapper around every RPC: entry/exit logging, error mapping to gRPC status (errors.ts is the
// only place that knows codes), and UNIMPLEMENTED for every method whose handler has not landed —
// never a fake success. Handlers are plain async functions and hold no boilerplate. Status
// messages often quote the request (a name, a path, an id): this is the one place they are cut
// to a bounded size before they reach the client.
import * as grpc from '@grpc/grpc-js';
import { CribError, UnimplementedError, toGrpcStatus } from '../errors.js';
import { log } from '../log.js';
import { truncateText } from '../truncate.js';

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

export type ServiceHandlers<D extends grpc.ServiceDefinition> = {
  [K in keyof D as string extends K ? never : K]?: K extends StreamingName
    ? StreamingHandler<MethodOf<D, K>['req'], MethodOf<D, K>['res']>
    : UnaryHandler<MethodOf<D, K>['req'], MethodOf<D, K>['res']>;
};

/**
 * One call's context. grpc-js emits 'cancelled' when a call's stream closes, also after a call
 * that answered normally; aborting then (an Error with its stack, an abort event) is work for
 * nobody, so a cancel counts only while the handler runs. The AbortController is made only when
 * a handler asks for the signal: most never do.
 */
class CallContext implements RpcContext {
  private controller: AbortController | undefined;
  private cancelled = false;
  private settled = false;

  constructor(private readonly call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>) {
    call.once('cancelled', () => {
      if (this.settled) return;
      this.cancelled = true;
      this.controller?.abort(cancelledReason());
    });
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(cancelledReason());
    }
    return this.controller.signal;
  }

  deadlineMs(): number | undefined {
    const deadline = this.call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined;
    return at === undefined ? undefined : Math.max(0, at - Date.now());
  }

  /** The handler is done: a cancel from now on has nothing to stop. */
  settle(): void {
    this.settled = true;
  }
}

function cancelledReason(): Error {
  return new Error('the client cancelled the call');
}

/** The status a failed call answers with; its message is bounded whatever it quotes. */
export function failureStatus(err: unknown): { code: grpc.status; details: string } {
  const { code, details } = toGrpcStatus(err);
  return { code, details: truncateText(details) };
}

function logFailure(method: string, err: unknown, ms: number): void {
  if (err instanceof CribError) {
    log.info({ method, ms, code: grpc.status[err.grpcCode], err: err.message }, 'rpc failed');
  } else {
    log.error({ method, ms, err }, 'rpc failed with an unexpected error');
  }
}

/** Told about every call when it ends (the metrics' hook): its outcome and how long it took. */
export type RpcObserver = (method: string, code: grpc.status, seconds: number) => void;

/** A full implementation of a service: every method answers, implemented or UNIMPLEMENTED. */
export function implementService<D extends grpc.ServiceDefinition>(
  serviceName: string,
  definition: D,
  handlers: ServiceHandlers<D>,
  observe?: RpcObserver,
): grpc.UntypedServiceImplementation {
  const ended = (rpc: string, code: grpc.status, started: number): void => {
    if (!observe) return;
    try {
      observe(rpc, code, (Date.now() - started) / 1000);
    } catch (err) {
      log.warn({ method: rpc, err }, 'the RPC observer failed');
    }
  };
  const impl: grpc.UntypedServiceImplementation = {};
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
    if (method.responseStream) {
      impl[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const started = Date.now();
        const ctx = new CallContext(call);
        (run as StreamingHandler<unknown, unknown>)(call.request, ctx, (res) => call.write(res)).then(
          () => {
            ctx.settle();
            if (log.isLevelEnabled('debug')) log.debug({ method: rpc, ms: Date.now() - started }, 'rpc done');
            ended(rpc, grpc.status.OK, started);
            call.end();
          },
          (err: unknown) => {
            ctx.settle();
            logFailure(rpc, err, Date.now() - started);
            const { code, details } = failureStatus(err);
            ended(rpc, code, started);
            // grpc-js sends a stream's status when 'error' is emitted; destroy() would cancel the
            // call instead and the client would see CANCELLED, not what went wrong.
            call.emit('error', Object.assign(new Error(details), { code, details }));
          },
        );
      };
    } else {
      impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const started = Date.now();
        const ctx = new CallContext(call);
        (run as UnaryHandler<unknown, unknown>)(call.request, ctx).then(
          (res) => {
            ctx.settle();
            // The entry is built only when it will be written: most calls are at info level.
            if (log.isLevelEnabled('debug')) log.debug({ method: rpc, ms: Date.now() - started }, 'rpc done');
            ended(rpc, grpc.status.OK, started);
            callback(null, res);
          },
          (err: unknown) => {
            ctx.settle();
            logFailure(rpc, err, Date.now() - started);
            const { code, details } = failureStatus(err);
            ended(rpc, code, started);
            callback({ code, details, name: 'Error', message: details });
          },
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
