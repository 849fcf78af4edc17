// The CRI services crib builds from the build-time schema (cri-proto.ts) must be, on the wire and
// in the objects handlers see, exactly what @grpc/proto-loader makes of the vendored api.proto.
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { CRI_PROTO_PATH, PROTO_LOADER_OPTIONS, criProto } from './cri-proto.js';

const reference = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
type Method = protoLoader.MethodDefinition<object, object>;
const referenceService = (name: string) => reference[`runtime.v1.${name}`] as unknown as Record<string, Method>;
const ours = (name: 'RuntimeService' | 'ImageService') => criProto().runtime.v1[name].service as unknown as Record<string, Method>;

const SERVICES = ['RuntimeService', 'ImageService'] as const;

describe('criProto', () => {
  it('has every method of both services, with proto-loader\'s paths, streaming and names', () => {
    for (const name of SERVICES) {
      const ref = referenceService(name);
      const mine = ours(name);
      expect(Object.keys(mine).sort()).toEqual(Object.keys(ref).sort());
      for (const [rpc, m] of Object.entries(ref)) {
        const { path, requestStream, responseStream, originalName } = mine[rpc]!;
        expect({ rpc, path, requestStream, responseStream, originalName })
          .toEqual({ rpc, path: m.path, requestStream: m.requestStream, responseStream: m.responseStream, originalName: m.originalName });
      }
    }
  });

  it('reads an empty message of every request and response type as proto-loader does (every default)', () => {
    for (const name of SERVICES) {
      const ref = referenceService(name);
      for (const [rpc, m] of Object.entries(ours(name))) {
        const empty = Buffer.alloc(0);
        expect({ rpc, req: m.requestDeserialize(empty), res: m.responseDeserialize(empty) })
          .toEqual({ rpc, req: ref[rpc]!.requestDeserialize(empty), res: ref[rpc]!.responseDeserialize(empty) });
      }
    }
  });

  it('encodes and decodes int64 strings, enum names, maps, bytes and nested messages byte for byte as proto-loader does', () => {
    const samples: [string, 'request' | 'response', object][] = [
      ['RunPodSandbox', 'request', {
        config: {
          metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 3 },
          labels: { a: 'b' },
          portMappings: [{ protocol: 'UDP', containerPort: 53, hostPort: 5353, hostIp: '1.2.3.4' }],
          linux: { securityContext: { namespaceOptions: { network: 'NODE', pid: 'POD' }, runAsUser: { value: '9007199254740993' } } },
        },
        runtimeHandler: 'h',
      }],
      ['ListContainers', 'response', {
        containers: [{ id: 'c', podSandboxId: 'p', state: 'CONTAINER_EXITED', createdAt: '1733100000123456789', labels: { x: 'y' }, image: { image: 'i' } }],
      }],
      ['ExecSync', 'response', { stdout: Buffer.from([0, 1, 255]), stderr: Buffer.from('err'), exitCode: -1 }],
      ['UpdateContainerResources', 'request', { containerId: 'c', linux: { memoryLimitInBytes: '-1', unified: { 'memory.high': 'max' } } }],
    ];
    for (const [rpc, dir, value] of samples) {
      const ref = referenceService('RuntimeService')[rpc]!;
      const mine = ours('RuntimeService')[rpc]!;
      const [refSer, refDe, mySer, myDe] = dir === 'request'
        ? [ref.requestSerialize, ref.requestDeserialize, mine.requestSerialize, mine.requestDeserialize]
        : [ref.responseSerialize, ref.responseDeserialize, mine.responseSerialize, mine.responseDeserialize];
      const bytes = refSer(value);
      expect(Buffer.from(mySer(value)).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
      expect(myDe(bytes)).toEqual(refDe(bytes));
    }
  });

  it('refuses an array where a message belongs, as proto-loader does', () => {
    expect(() => ours('RuntimeService').Version!.requestSerialize([] as unknown as object)).toThrow(/expected object with VersionRequest structure/);
  });
});
