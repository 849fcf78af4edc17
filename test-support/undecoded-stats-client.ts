// A client for the stats listings that hands back each answer's bytes undecoded, for benchmarks
// that time a runtime's answer: decoding 100-250 pods' stats in this one-threaded Node client
// (protobufjs, objects built field by field) takes it 10-40 ms, during which nothing else it
// waits for is read, and a garbage collection of its own can double that. kubelet decodes in Go,
// on other threads. A benchmark stops its clock on the last byte and decodes after (decode()).
import * as grpc from '@grpc/grpc-js';
import { criProto } from '../src/server/cri-proto.js';
import { KUBELET_CHANNEL_OPTIONS } from './cri-client.js';

export type StatsListing = 'ListPodSandboxStats' | 'ListContainerStats';

export class UndecodedStatsClient {
  private readonly client: grpc.Client;
  private readonly defs = criProto().runtime.v1.RuntimeService.service;

  constructor(socket: string) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure(), KUBELET_CHANNEL_OPTIONS);
  }

  /** The whole listing (an empty request), as the bytes of its answer. */
  call(method: StatsListing): Promise<Buffer> {
    const def = this.defs[method]!;
    return new Promise<Buffer>((resolve, reject) => {
      this.client.makeUnaryRequest(def.path, def.requestSerialize, (b: Buffer) => b, {}, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  /** An answer's bytes decoded as the CRI client would have. */
  decode(method: StatsListing, bytes: Buffer): { stats: unknown[] } {
    return this.defs[method]!.responseDeserialize(bytes) as { stats: unknown[] };
  }

  close(): void {
    this.client.close();
  }
}
