// The direct encoder (direct-encoder.ts) must give, for every response it encodes, exactly the bytes
// protobufjs's fromObject + encode give (what proto-loader's serializer sends), and those bytes
// must decode back to the object that was encoded: checked on messages with every field of the
// schema set (built from the schema itself, so a field added to the vendored api.proto is
// covered without editing this test), on a reading of real cgroups, and against pinned bytes.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as protoLoader from '@grpc/proto-loader';
import type * as Protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { CRI_DESCRIPTOR_JSON } from '../gen/cri-descriptor.js';
import { cgroupLayout } from '../stats/cgroup-path.js';
import { StatsCollector, type ContainerSubject, type PodSubject } from '../stats/stats-collector.js';
import { CRI_PROTO_PATH, DIRECT_ENCODED, PROTO_LOADER_OPTIONS, criProto, messageEncoder } from './cri-proto.js';
import { compileEncoder, compiledTypeCount, UnsupportedTypeError, withEncodedBody } from './direct-encoder.js';

const protobuf = createRequire(import.meta.url)('protobufjs/light.js') as typeof Protobuf;
const root = protobuf.Root.fromJSON(JSON.parse(CRI_DESCRIPTOR_JSON) as Protobuf.INamespace);
root.resolveAll();
const lookup = (name: string) => root.lookupType(`runtime.v1.${name}`);
/** protobufjs's own path, as proto-loader serializes. */
const reference = (type: Protobuf.Type, value: object) => Buffer.from(type.encode(type.fromObject(value)).finish());
const decode = (type: Protobuf.Type, bytes: Buffer) => type.toObject(type.decode(bytes), PROTO_LOADER_OPTIONS);

const loader = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
type Method = protoLoader.MethodDefinition<object, object>;
const loaderRuntime = loader['runtime.v1.RuntimeService'] as unknown as Record<string, Method>;
const loaderImage = loader['runtime.v1.ImageService'] as unknown as Record<string, Method>;
const ours = criProto().runtime.v1.RuntimeService.service as unknown as Record<string, Method>;
const oursImage = criProto().runtime.v1.ImageService.service as unknown as Record<string, Method>;

const STATS_RPCS: [rpc: string, response: string][] = [
  ['ContainerStats', 'ContainerStatsResponse'],
  ['ListContainerStats', 'ListContainerStatsResponse'],
  ['StreamContainerStats', 'StreamContainerStatsResponse'],
  ['PodSandboxStats', 'PodSandboxStatsResponse'],
  ['ListPodSandboxStats', 'ListPodSandboxStatsResponse'],
  ['StreamPodSandboxStats', 'StreamPodSandboxStatsResponse'],
  ['ListPodSandboxMetrics', 'ListPodSandboxMetricsResponse'],
  ['StreamPodSandboxMetrics', 'StreamPodSandboxMetricsResponse'],
  ['ListPodSandbox', 'ListPodSandboxResponse'],
  ['StreamPodSandboxes', 'StreamPodSandboxesResponse'],
  ['ListContainers', 'ListContainersResponse'],
  ['StreamContainers', 'StreamContainersResponse'],
  ['Version', 'VersionResponse'],
  ['PodSandboxStatus', 'PodSandboxStatusResponse'],
  ['ContainerStatus', 'ContainerStatusResponse'],
  ['ImageStatus', 'ImageStatusResponse'],
  ['ListImages', 'ListImagesResponse'],
  ['GetContainerEvents', 'ContainerEventResponse'],
];

// Values that reach every corner of the wire format: a uint64 above 2^53 (not a double) and at
// 2^64 - 1 (ten varint bytes), int64 below zero, non-ASCII strings short and long (protobufjs
// writes those two differently), a double with a fraction.
const U64 = ['18446744073709551615', '9007199254740993', '0', '300'];
const I64 = ['-1', '1764656000123456789', '-9223372036854775808'];
const STRINGS = ['', 'eth0', 'k\u00e9y-\u{1F600}', `long-\u00e9-${'x'.repeat(60)}`];

/**
 * An object with every field of `type` set (messages to depth `depth`, repeated fields with two
 * elements, maps with two keys), in the form the handlers and proto-loader use: int64 as
 * decimal strings, enums as names. `n` varies the values.
 */
function full(type: Protobuf.Type, n: number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  type.fieldsArray.forEach((f, i) => {
    const k = n + i;
    f.resolve();
    const rt = f.resolvedType;
    const value = (j: number): unknown => {
      if (rt && (rt as Protobuf.Type).fieldsArray) return full(rt as Protobuf.Type, j, depth + 1);
      if (rt) {
        const names = Object.keys((rt as Protobuf.Enum).values);
        return names[j % names.length];
      }
      switch (f.type) {
        case 'string': return STRINGS[j % STRINGS.length];
        case 'uint64': return U64[j % U64.length];
        case 'int64': return I64[j % I64.length];
        case 'uint32': return [0, 7, 4294967295][j % 3];
        case 'int32': return [-5, 0, 2147483647][j % 3];
        case 'double': return [0.125, 12.5, 0][j % 3];
        case 'bool': return j % 2 === 0;
        default: throw new Error(`test generator: no value for ${f.fullName} (${f.type})`);
      }
    };
    if (depth > 8 && rt && (rt as Protobuf.Type).fieldsArray) return;
    if (f.map) out[f.name] = { [`a${k}`]: value(k), [`b/${k}`]: value(k + 1) };
    else if (f.repeated) out[f.name] = [value(k), value(k + 1)];
    else out[f.name] = value(k);
  });
  return out;
}

describe('direct encoder', () => {
  it('gives protobufjs\'s bytes for every stats response with every field set, and they decode to the input', () => {
    for (const [, name] of STATS_RPCS) {
      const type = lookup(name);
      const encode = compileEncoder(type);
      for (const n of [0, 1, 2, 3]) {
        const value = full(type, n);
        const bytes = encode(value);
        expect(bytes.toString('hex'), `${name} #${n}`).toBe(reference(type, value).toString('hex'));
        expect(decode(type, bytes), `${name} #${n}`).toEqual(value);
      }
    }
  });

  it('covers every response the daemon encodes directly (each is compiled when first sent, so only here before that)', () => {
    expect(STATS_RPCS.map(([, name]) => name).sort()).toEqual([...DIRECT_ENCODED].sort());
  });

  it('is what the daemon\'s serializer of each stats RPC sends, byte for byte proto-loader\'s', () => {
    for (const [rpc, name] of STATS_RPCS) {
      const value = full(lookup(name), 5);
      const [mineDef, loaderDef] = rpc in ours ? [ours[rpc]!, loaderRuntime[rpc]!] : [oursImage[rpc]!, loaderImage[rpc]!];
      const mine = mineDef.responseSerialize(value);
      expect(Buffer.from(mine).toString('hex'), rpc).toBe(Buffer.from(loaderDef.responseSerialize(value)).toString('hex'));
      expect(loaderDef.responseDeserialize(mine), rpc).toEqual(value);
    }
  });

  it('copies in the body a nested message object carries (withEncodedBody): the bytes it would have written', () => {
    const encodeStats = messageEncoder('ContainerStats');
    const encodeContainerAttributes = messageEncoder('ContainerAttributes');
    const encodePodAttributes = messageEncoder('PodSandboxAttributes');
    for (const name of ['ListContainerStatsResponse', 'ListPodSandboxStatsResponse']) {
      const type = lookup(name);
      for (const n of [0, 1]) {
        for (const bodies of ['stats', 'attributes'] as const) {
          const value = full(type, n) as Record<string, unknown>;
          const expected = reference(type, value).toString('hex');
          const containers = (name === 'ListContainerStatsResponse'
            ? value.stats as object[]
            : (value.stats as { linux: { containers: object[] } }[]).flatMap((p) => p.linux.containers)) as { attributes: object }[];
          // Every ContainerStats of the response carries its own encoding; or, as the stats
          // handlers make them, every container's and pod's attributes do.
          if (bodies === 'stats') for (const c of containers) withEncodedBody(c, encodeStats(c));
          else {
            for (const c of containers) withEncodedBody(c.attributes, encodeContainerAttributes(c.attributes));
            if (name === 'ListPodSandboxStatsResponse') {
              for (const p of value.stats as { attributes: object }[]) withEncodedBody(p.attributes, encodePodAttributes(p.attributes));
            }
          }
          expect(compileEncoder(type)(value).toString('hex'), `${name} #${n} ${bodies}`).toBe(expected);
        }
      }
    }
    // The carried body is what is sent (copied, not written again from the object).
    const stats = withEncodedBody({ attributes: { id: 'live' } }, encodeStats({ attributes: { id: 'kept' } }));
    const decoded = decode(lookup('ListContainerStatsResponse'), compileEncoder(lookup('ListContainerStatsResponse'))({ stats: [stats] }));
    expect(decoded).toMatchObject({ stats: [{ attributes: { id: 'kept' } }] });
  });

  it('pins the bytes of a small ContainerStatsResponse (a uint64 above 2^53, zeros, a map, nulls)', () => {
    const value = {
      stats: {
        attributes: { id: 'c1', metadata: { name: 'n', attempt: 0 }, labels: { k: 'v' }, annotations: {} },
        cpu: { timestamp: '1764656000123456789', usageCoreNanoSeconds: { value: '9007199254740993' }, usageNanoCores: null, psi: null },
        memory: null, writableLayer: null, swap: null, io: null,
      },
    };
    const bytes = compileEncoder(lookup('ContainerStatsResponse'))(value);
    expect(bytes.toString('hex')).toBe(
      '0a2c' + // stats (field 1), 44 bytes
        '0a13' + '0a026331' + '1205' + '0a016e' + '1000' + '1a06' + '0a016b' + '120176' + // attributes: id, metadata {name, attempt 0}, labels {k: v}
        '1215' + '08959afbb085a9d4be18' + '1209' + '088180808080808010', // cpu: timestamp, usageCoreNanoSeconds {2^53 + 1}
    );
    expect(decode(lookup('ContainerStatsResponse'), bytes)).toMatchObject({
      stats: { cpu: { timestamp: '1764656000123456789', usageCoreNanoSeconds: { value: '9007199254740993' }, usageNanoCores: null } },
    });
  });

  it('takes int64 values as decimal strings, numbers, bigints or Longs alike', () => {
    const type = lookup('UInt64Value');
    const encode = compileEncoder(type);
    for (const s of ['0', '1', '127', '128', '4294967296', '9007199254740993', '18446744073709551615']) {
      const want = reference(type, { value: s }).toString('hex');
      expect(encode({ value: BigInt(s) }).toString('hex'), s).toBe(want);
      if (BigInt(s) <= BigInt(Number.MAX_SAFE_INTEGER)) expect(encode({ value: Number(s) }).toString('hex'), s).toBe(want);
      const big = BigInt(s);
      expect(encode({ value: { low: Number(big & 0xffffffffn) | 0, high: Number(big >> 32n) | 0, unsigned: true } }).toString('hex'), s).toBe(want);
    }
  });

  it('writes every length of decimal string as protobufjs does (the split at 10^9, 2^53, 2^64)', () => {
    const u = lookup('UInt64Value');
    const i = lookup('CpuUsage'); // timestamp: int64
    const encodeU = compileEncoder(u);
    const encodeI = compileEncoder(i);
    let seed = 12345;
    const digit = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) % 10);
    const values = ['0', '000123', '999999999', '1000000000', '9007198999999999', '9007199254740991', '9007199254740992',
      '9223372036854775807', '9223372036854775808', '9999999999999999999', '10000000000000000000',
      '18446744073709551615', '18446744073709551616', '99999999999999999999999'];
    for (let len = 1; len <= 20; len++) {
      for (let k = 0; k < 50; k++) values.push(Array.from({ length: len }, digit).join(''));
    }
    for (const value of values) {
      expect(encodeU({ value }).toString('hex'), value).toBe(reference(u, { value }).toString('hex'));
      for (const timestamp of [value, `-${value}`]) {
        expect(encodeI({ timestamp }).toString('hex'), timestamp).toBe(reference(i, { timestamp }).toString('hex'));
      }
    }
  });

  it('refuses what protobufjs refuses, and an int64 that is not an integer', () => {
    const encode = compileEncoder(lookup('ContainerStatsResponse'));
    expect(() => encode({ stats: { cpu: 'x' } })).toThrow(/CpuUsage|cpu: object expected/);
    expect(() => encode({ stats: { attributes: { labels: 'x' } } })).toThrow(/labels: object expected/);
    expect(() => encode({ stats: { cpu: { timestamp: '12abc' } } })).toThrow(/timestamp: integer expected/);
    expect(() => encode({ stats: { cpu: { timestamp: 1.5 } } })).toThrow(/timestamp: integer expected/);
    expect(() => compileEncoder(lookup('ListPodSandboxStatsResponse'))({ stats: {} })).toThrow(/stats: array expected/);
    // A failed encode leaves nothing behind for the next one.
    const ok = { stats: { attributes: { id: 'c' } } };
    expect(encode(ok).toString('hex')).toBe(reference(lookup('ContainerStatsResponse'), ok).toString('hex'));
  });

  it('writes strings as protobufjs does: ASCII, multi-byte, lone surrogates, short and long', () => {
    const type = lookup('FilesystemIdentifier');
    const encode = compileEncoder(type);
    for (const base of ['', 'a', '\u00e9\u4e2d\u{1F600}', 'lone \ud800 high', 'lone \udc00 low', 'end \ud83d']) {
      for (const mountpoint of [base, base + 'x'.repeat(45), 'y'.repeat(130) + base]) {
        expect(encode({ mountpoint }).toString('hex'), JSON.stringify(mountpoint)).toBe(reference(type, { mountpoint }).toString('hex'));
      }
    }
  });

  it('writes enums by name or number as fromObject does, and leaves out an unknown name', () => {
    const type = lookup('Metric');
    const encode = compileEncoder(type);
    for (const metricType of ['GAUGE', 'COUNTER', 1, 7, 'NO_SUCH_TYPE']) {
      const value = { name: 'm', metricType };
      expect(encode(value).toString('hex'), String(metricType)).toBe(reference(type, value).toString('hex'));
    }
  });

  it('grows past its scratch buffer and moves long bodies behind their lengths correctly', () => {
    const type = lookup('ListContainerStatsResponse');
    const value = { stats: Array.from({ length: 3000 }, (_, i) => full(lookup('ContainerStats'), i)) };
    const bytes = compileEncoder(type)(value);
    expect(bytes.length).toBeGreaterThan(1024 * 1024);
    expect(bytes.equals(reference(type, value))).toBe(true);
  });

  it('writes repeated numbers packed as protobufjs does, nothing for an empty list', () => {
    const type = lookup('LinuxContainerUser');
    const encode = compileEncoder(type);
    for (const groups of [[], ['0'], ['-1', '65534', '9223372036854775807'], Array.from({ length: 200 }, (_, i) => String(i * 1000))]) {
      const value = { uid: '1', gid: '2', supplementalGroups: groups };
      expect(encode(value).toString('hex'), `${groups.length} groups`).toBe(reference(type, value).toString('hex'));
    }
    // Empty: no field at all (a packed run of length 0 would differ from protobufjs's bytes).
    expect(encode({ uid: '1', gid: '2', supplementalGroups: [] })).toEqual(Buffer.from([0x08, 0x01, 0x10, 0x02]));
  });

  it('refuses a type holding a kind of field it does not handle (bytes)', () => {
    expect(() => compileEncoder(lookup('ExecSyncResponse'))).toThrow(UnsupportedTypeError);
  });

  // The stats types sit in several responses: each listing's first answer compiled its own copy.
  it('compiles each type once, whichever encoder holds it', () => {
    const own = protobuf.Root.fromJSON({ nested: { t: { nested: {
      Leaf: { fields: { n: { type: 'uint64', id: 1 } } },
      Mid: { fields: { leaf: { type: 'Leaf', id: 1 }, s: { type: 'string', id: 2 } } },
      One: { fields: { mid: { type: 'Mid', id: 1 } } },
      Two: { fields: { mids: { rule: 'repeated', type: 'Mid', id: 1 }, leaf: { type: 'Leaf', id: 2 } } },
    } } } });
    own.resolveAll();
    const type = (name: string) => own.lookupType(`t.${name}`);
    const before = compiledTypeCount();
    const one = compileEncoder(type('One'));
    expect(compiledTypeCount() - before).toBe(3); // One, Mid, Leaf
    const two = compileEncoder(type('Two'));
    expect(compiledTypeCount() - before).toBe(4); // and Two alone
    compileEncoder(type('Mid'));
    expect(compiledTypeCount() - before).toBe(4);
    const value = { mids: [{ leaf: { n: '7' }, s: 'a' }, { s: 'b' }], leaf: { n: 9 } };
    expect(two(value)).toEqual(reference(type('Two'), value));
    expect(one({ mid: { leaf: { n: '1' } } })).toEqual(reference(type('One'), { mid: { leaf: { n: '1' } } }));
  });

  it('keeps nothing of a compile that fails: a type it had begun still refuses, never encodes nothing', () => {
    const own = protobuf.Root.fromJSON({ nested: { t: { nested: {
      Bad: { fields: { b: { type: 'bytes', id: 1 } } },
      Holder: { fields: { bad: { type: 'Bad', id: 1 } } },
      Outer: { fields: { holder: { type: 'Holder', id: 1 } } },
    } } } });
    own.resolveAll();
    const before = compiledTypeCount();
    expect(() => compileEncoder(own.lookupType('t.Outer'))).toThrow(UnsupportedTypeError);
    expect(compiledTypeCount()).toBe(before);
    expect(() => compileEncoder(own.lookupType('t.Holder'))).toThrow(UnsupportedTypeError);
    expect(compiledTypeCount()).toBe(before);
  });

  it('encodes stats read from this process\'s real cgroups and network table as proto-loader does', async () => {
    // The cgroup this test runs in, in the host's real hierarchy (readable unprivileged): v2's
    // single line, or v1's memory controller line; in the root cgroup (which crib never
    // reads), the first cgroup below it.
    const layout = cgroupLayout();
    const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
    const line = layout.mode === 2 ? lines.find((l) => l.startsWith('0::')) : lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
    let cgroupsPath = line!.slice(line!.lastIndexOf(':') + 1);
    if (cgroupsPath === '/') {
      const hierarchy = layout.mode === 2 ? layout.root : `${layout.root}/memory`;
      const sub = readdirSync(hierarchy, { withFileTypes: true }).find((e) => e.isDirectory());
      cgroupsPath = `/${sub!.name}`;
    }
    const collector = new StatsCollector({ cgroupTtlMs: 0 });
    try {
      const container: ContainerSubject = {
        attributes: { id: 'c-real', metadata: { name: 'real', attempt: 1 }, labels: { app: 'x' }, annotations: { 'a/b': 'c' } },
        cgroupsPath,
      };
      const pod: PodSubject = {
        attributes: { id: 'p-real', metadata: { name: 'p', uid: 'u', namespace: 'ns', attempt: 0 }, labels: {}, annotations: {} },
        cgroupParent: container.cgroupsPath,
        netnsPath: '/proc/self/ns/net',
        pids: [process.pid],
        containers: [container],
      };
      const containerStats = await collector.listContainerStats([container]);
      const podStats = await collector.listPodSandboxStats([pod]);
      // The reading has the sections a real cgroup gives (else this compares nothing).
      expect(containerStats[0]!.memory?.usageBytes?.value).toMatch(/^\d+$/);
      expect(podStats[0]!.linux?.network?.interfaces?.length).toBeGreaterThan(0);
      for (const [rpc, value] of [['ListContainerStats', { stats: containerStats }], ['ListPodSandboxStats', { stats: podStats }]] as const) {
        const mine = ours[rpc]!.responseSerialize(value);
        const theirs = loaderRuntime[rpc]!.responseSerialize(value);
        expect(Buffer.from(mine).toString('hex'), rpc).toBe(Buffer.from(theirs).toString('hex'));
        expect(loaderRuntime[rpc]!.responseDeserialize(mine), rpc).toEqual(loaderRuntime[rpc]!.responseDeserialize(theirs));
      }
    } finally {
      collector.close();
    }
  });
});
