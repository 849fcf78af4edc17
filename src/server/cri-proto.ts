// The CRI's two gRPC services, RuntimeService and ImageService, built once from the schema that
// `npm run gen:types` compiles out of the vendored cri-api/api.proto (src/gen/cri-descriptor.ts).
// Field names are camelCase, int64 arrive as strings (a nanosecond timestamp does not fit a
// double) and enums as their names, matching the types generated into src/gen.
//
// Why not @grpc/proto-loader at run time: it parses the 95 KB .proto at every start and builds a
// descriptor object for every message of the schema, which grpc-js never reads; together that was
// about 7 MiB of the daemon's resident memory for its whole life. The (de)serializers here are the
// ones proto-loader would make: protobufjs fromObject + encode, decode + toObject.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import type { Options } from '@grpc/proto-loader';
import type * as Protobuf from 'protobufjs';
import type { ProtoGrpcType } from '../gen/api.js';
import type { ImageServiceDefinition } from '../gen/runtime/v1/ImageService.js';
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import { CRI_DESCRIPTOR_JSON } from '../gen/cri-descriptor.js';
import { compileEncoder } from './direct-encoder.js';
import { PACKAGE_ROOT } from '../package-root.js';

/** The vendored schema itself, for tests that check it against proto-loader's reading of it. */
export const CRI_PROTO_PATH = fileURLToPath(new URL('cri-api/api.proto', PACKAGE_ROOT));

/** How messages become objects (protobufjs toObject options, as proto-loader takes them). */
export const PROTO_LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} satisfies Options;

type V1 = ProtoGrpcType['runtime']['v1'];
/** The part of proto-loader's package object crib uses: the two services. */
export interface CriProto {
  runtime: { v1: Pick<V1, 'RuntimeService' | 'ImageService'> };
}

/** The two services' method definitions, as the daemon's server (grpc-server.ts) takes them. */
export interface CriServices {
  RuntimeService: RuntimeServiceDefinition;
  ImageService: ImageServiceDefinition;
}

const SERVICES = ['RuntimeService', 'ImageService'] as const;

// protobufjs without its .proto parser (the "light" build); a CommonJS module whose exports
// Node's ESM import cannot see by name, so it is required.
const protobuf = createRequire(import.meta.url)('protobufjs/light.js') as typeof Protobuf;

/**
 * Responses encoded by direct-encoder.ts rather than protobufjs's fromObject + encode (the same
 * bytes, a fraction of the CPU): the stats listings and the pod and container listings, large
 * and repeated every few seconds (kubelet relists every second), and the statuses and image
 * calls kubelet makes for every pod and container it syncs.
 */
export const DIRECT_ENCODED: ReadonlySet<string> = new Set([
  'VersionResponse', 'PodSandboxStatusResponse', 'ContainerStatusResponse', 'ImageStatusResponse', 'ListImagesResponse',
  'ContainerEventResponse',
  'ListPodSandboxResponse', 'StreamPodSandboxesResponse', 'ListContainersResponse', 'StreamContainersResponse',
  'ContainerStatsResponse', 'ListContainerStatsResponse', 'StreamContainerStatsResponse',
  'PodSandboxStatsResponse', 'ListPodSandboxStatsResponse', 'StreamPodSandboxStatsResponse',
  'ListPodSandboxMetricsResponse', 'StreamPodSandboxMetricsResponse',
]);

function serializer(type: Protobuf.Type): (value: object) => Buffer {
  const isDirect = DIRECT_ENCODED.has(type.name);
  // Compiled when the first answer of the type is sent, not at start: each compiled type's
  // functions (and those of every type it holds, shared with the other encoders that hold them)
  // stay in the heap, and an idle daemon sends few of these types, a node without pods some
  // never. (Every one is compiled by the direct encoder's tests, so a type it cannot handle fails
  // there, not in a daemon.)
  let direct: ((value: object) => Buffer) | undefined;
  // A message object (not a plain one) carries its defaults on its prototype: protobufjs's path.
  let ctor: Protobuf.Constructor<object> | undefined;
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    if (isDirect) {
      if (direct === undefined) {
        direct = compileEncoder(type);
        ctor = type.ctor as Protobuf.Constructor<object>;
      }
      if (!(value instanceof ctor!)) return direct(value);
    }
    const bytes = type.encode(type.fromObject(value)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: Protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), PROTO_LOADER_OPTIONS);
}

function serviceDefinition(service: Protobuf.Service): Record<string, grpc.MethodDefinition<object, object>> {
  const def: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methodsArray) {
    // resolveAll() below has resolved every method's types, or thrown.
    const req = method.resolvedRequestType!;
    const res = method.resolvedResponseType!;
    def[method.name] = {
      path: `/${service.fullName.slice(1)}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: serializer(req),
      requestDeserialize: deserializer(req),
      responseSerialize: serializer(res),
      responseDeserialize: deserializer(res),
      // grpc-js's client offers each method under this name too (as proto-loader's does).
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return def;
}

let services: CriServices | undefined;
let schema: Protobuf.Root | undefined;

/** The compiled schema, resolved (built once). */
function criRoot(): Protobuf.Root {
  if (schema) return schema;
  const root = protobuf.Root.fromJSON(JSON.parse(CRI_DESCRIPTOR_JSON) as Protobuf.INamespace);
  root.resolveAll();
  schema = root;
  return root;
}

/**
 * The direct encoder (direct-encoder.ts) of one runtime.v1 message type that is a part of a
 * directly encoded response (ContainerStats, PodSandboxStats, PodSandbox, Container, the two
 * statuses, Image and the stats' attributes): what a body handed to withEncodedBody is made with.
 */
export function messageEncoder(
  typeName: 'ContainerStats' | 'PodSandboxStats' | 'PodSandbox' | 'Container' | 'PodSandboxStatus' | 'ContainerStatus' | 'Image'
    | 'ContainerAttributes' | 'PodSandboxAttributes',
): (value: object) => Buffer {
  return compileEncoder(criRoot().lookupType(`runtime.v1.${typeName}`));
}

/** The services' definitions alone: what the daemon serves. Loads no gRPC library. */
export function criServices(): CriServices {
  if (services) return services;
  const root = criRoot();
  const defs: Record<string, unknown> = {};
  for (const name of SERVICES) defs[name] = serviceDefinition(root.lookupService(`runtime.v1.${name}`));
  services = defs as unknown as CriServices;
  return services;
}

let loaded: CriProto | undefined;

/**
 * The services as grpc-js client constructors (proto-loader's package object), for the CLI and
 * the tests. grpc-js is required here, on first use, so that the daemon, which imports this
 * module for criServices(), never loads it.
 */
export function criProto(): CriProto {
  if (loaded) return loaded;
  const { makeClientConstructor } = createRequire(import.meta.url)('@grpc/grpc-js') as typeof grpc;
  const defs = criServices();
  const v1: Record<string, unknown> = {};
  for (const name of SERVICES) v1[name] = makeClientConstructor(defs[name] as unknown as grpc.ServiceDefinition, `runtime.v1.${name}`);
  loaded = { runtime: { v1: v1 as CriProto['runtime']['v1'] } };
  return loaded;
}
