// Test helper: round-trips a CRI response through the real protobuf (de)serializers of the
// vendored proto, so the builders' output is proven to encode as kubelet will decode it.
import * as protoLoader from '@grpc/proto-loader';
import { CRI_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../server/cri-proto.js';

const defs = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
const runtime = defs['runtime.v1.RuntimeService'] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>;

export function roundTripResponse(rpc: string, response: unknown): unknown {
  const m = runtime[rpc];
  if (!m) throw new Error(`no RuntimeService method ${rpc}`);
  return m.responseDeserialize(m.responseSerialize(response));
}
