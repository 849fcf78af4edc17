// Loads the vendored CRI proto once. Field names become camelCase, int64 arrive as strings (a
// nanosecond timestamp does not fit a double) and enums as their names, matching the types that
// `npm run gen:types` generates into src/gen.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../gen/api.js';

export const CRI_PROTO_PATH = fileURLToPath(new URL('../../cri-api/api.proto', import.meta.url));

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let loaded: ProtoGrpcType | undefined;

export function criProto(): ProtoGrpcType {
  loaded ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS),
  ) as unknown as ProtoGrpcType;
  return loaded;
}
