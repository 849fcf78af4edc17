// A CRI client speaking gRPC over the daemon's unix socket the way kubelet and crictl do, for the
// `crib` command (and, through test-support, for the tests). Every method is promisified:
// `await cri.runtime.Version({})`; server-streaming ones resolve with every message received.
import * as grpc from '@grpc/grpc-js';
import { criProto } from '../server/cri-proto.js';

export type Unary = (req: unknown, opts?: grpc.CallOptions) => Promise<any>;
export type Streaming = (req: unknown) => Promise<any[]>;

export interface CriClient {
  runtime: Record<string, Unary & Streaming>;
  image: Record<string, Unary & Streaming>;
  close(): void;
}

function promisify(client: grpc.Client, service: grpc.ServiceDefinition): Record<string, Unary & Streaming> {
  const out: Record<string, Unary & Streaming> = {};
  for (const [name, def] of Object.entries(service)) {
    const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!.bind(client);
    out[name] = (def.responseStream
      ? (req: unknown) =>
          new Promise<any[]>((resolve, reject) => {
            const items: any[] = [];
            const stream = fn(req) as grpc.ClientReadableStream<unknown>;
            stream.on('data', (d) => items.push(d));
            stream.on('error', reject);
            stream.on('end', () => resolve(items));
          })
      : (req: unknown, opts: grpc.CallOptions = {}) =>
          new Promise<any>((resolve, reject) =>
            fn(req, new grpc.Metadata(), opts, (err: grpc.ServiceError | null, res: any) =>
              err ? reject(err) : resolve(res),
            ),
          )) as Unary & Streaming;
  }
  return out;
}

/** kubelet's message limit both ways (gRPC clients default to receiving 4 MiB). */
export const KUBELET_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
};

/** A gRPC target for an address as the config spells it: "unix:///path" or a bare path. */
export function grpcTarget(address: string): string {
  return address.startsWith('unix:') || address.includes('://') ? address : `unix://${address}`;
}

export function criClient(address: string, options: grpc.ChannelOptions = {}): CriClient {
  const v1 = criProto().runtime.v1;
  const target = grpcTarget(address);
  const creds = grpc.credentials.createInsecure();
  const rt = new v1.RuntimeService(target, creds, options);
  const im = new v1.ImageService(target, creds, options);
  return {
    runtime: promisify(rt, v1.RuntimeService.service),
    image: promisify(im, v1.ImageService.service),
    close() {
      rt.close();
      im.close();
    },
  };
}
