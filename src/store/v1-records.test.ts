// Records as the crib before schema versions wrote them (fixtures/v1: copied byte for byte from
// the root of a daemon built from main, after it pulled busybox, ran a pod with a hostPort on a
// dual-stack bridge network, created two containers, and ran a pod on a CNI network). Every one
// must load unchanged through the code that reads it today, a later write must stamp it
// `version: 1` and change nothing else, and a future schema's migration must run on them.
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINER_RECORD, type ContainerRecord } from '../container/container-record.js';
import { FailedPreconditionError, DataLossError } from '../errors.js';
import { ImageStore } from '../image/image-store.js';
import { CniNetwork } from '../network/cni-network.js';
import { HostPorts } from '../network/host-ports.js';
import { IPAM_FILE, Ipam } from '../network/ipam.js';
import { podLevel } from '../sandbox/mcs-levels.js';
import { SANDBOX_RECORD, type SandboxRecord } from '../sandbox/sandbox-record.js';
import { Snapshotter } from '../snapshot/snapshotter.js';
import { RecordStore } from './record-store.js';
import { defineSchema } from './schema.js';
import { StateFile } from './state-file.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'v1');
const BUILTIN_POD = '7eb6d70d2e670e1cbbb66a5834309de450594702a154c19f520d75df1d094dfa';
const CNI_POD = '13ebf527bb4b89cee9f051eebd35b3333e0636b475fd578f7eebdc9c688b740b';
const STARTED = '48b9924726fd4bd85d0398c1cb88e367febcf92003992e10e9f773215c968b78';
const IMAGE = 'sha256:3e65e059ea5b98953ad16ae465554f0fd2aca213fa3947cc781241fb6887fc68';
const CHAIN = 'sha256:91e7c8f00dfc42737b292e2d3c13f402b870f100ddb6fe6749fddaf11ebf0362';

let base: string;
let n = 0;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), `crib-v1-records-${process.pid}-`));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A fresh copy of a fixture root to load (and write) through the new code. */
function root(which: 'builtin-root' | 'cni-root'): string {
  const dir = join(base, `${which}-${n++}`);
  cpSync(join(FIXTURES, which), dir, { recursive: true });
  return dir;
}

const json = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const filesIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('records written before schema versions (version 1)', () => {
  it('have no version field on disk', () => {
    const r = root('builtin-root');
    for (const f of filesIn(join(r, 'containers'))) expect(json(join(r, 'containers', f))).not.toHaveProperty('version');
    expect(json(join(r, 'images', `${IMAGE.slice(7)}.json`))).not.toHaveProperty('version');
    expect(json(join(r, 'snapshots', '1', 'snapshot.json'))).not.toHaveProperty('version');
    // The IPAM and host-port files always carried version 1.
    expect(json(join(r, 'network', 'ipam.json')).version).toBe(1);
  });

  it('load containers and pods unchanged, and a later write only adds version: 1', async () => {
    const r = root('builtin-root');
    const containers = new RecordStore<ContainerRecord>(join(r, 'containers'), CONTAINER_RECORD);
    const loaded = await containers.load();
    expect(loaded.map((c) => c.id).sort()).toEqual(filesIn(join(r, 'containers')).map((f) => f.slice(0, -5)).sort());
    for (const c of loaded) expect(c).toEqual(json(join(r, 'containers', `${c.id}.json`)));
    expect(containers.get(STARTED)).toMatchObject({ podId: BUILTIN_POD, created: true, runtimeHandler: 'crib' });
    expect(containers.get(STARTED)!.pid).toBeGreaterThan(0);

    const before = json(containers.file(STARTED));
    await containers.update(STARTED, (c) => (c.exitCode = 0));
    expect(json(containers.file(STARTED))).toEqual({ version: 1, ...before, exitCode: 0 });

    for (const which of ['builtin-root', 'cni-root'] as const) {
      const pr = root(which);
      const pods = new RecordStore<SandboxRecord>(join(pr, 'pods'), SANDBOX_RECORD);
      const [pod, ...rest] = await pods.load();
      expect(rest).toEqual([]);
      // Unchanged but for the pod sandbox record's version-2 migration (below).
      expect(pod).toEqual({ ...json(join(pr, 'pods', `${pod!.id}.json`)), selinuxLevel: podLevel(pod!.id) });
      expect(pod!.id).toBe(which === 'builtin-root' ? BUILTIN_POD : CNI_POD);
      expect(pod!.state).toBe('ready');
    }
  });

  it('load images through ImageStore, by id and by tag', async () => {
    const r = root('builtin-root');
    const images = new ImageStore(r);
    await images.load();
    const file = join(r, 'images', `${IMAGE.slice(7)}.json`);
    expect(images.list()).toEqual([json(file)]);
    const tag = (json(file).repoTags as string[])[0]!;
    expect(images.resolve(tag)?.id).toBe(IMAGE);
    expect(images.referencedChainIds()).toEqual(new Set([CHAIN]));
    const before = json(file);
    await images.setPinned(IMAGE, true);
    const after = json(file);
    expect(after).toMatchObject({ version: 1, ...before, pinned: true, updatedAt: expect.any(String) });
  });

  it('load committed and active snapshots through Snapshotter', async () => {
    const r = root('builtin-root');
    const snaps = new Snapshotter(r);
    await snaps.load();
    expect(snaps.list()).toEqual([json(join(r, 'snapshots', '1', 'snapshot.json'))]);
    expect(snaps.get(CHAIN)).toMatchObject({ id: 1, chainId: CHAIN, diffId: CHAIN });
    const active = readdirSync(join(r, 'snapshots', 'active'));
    expect(snaps.listActive().sort((a, b) => a.key.localeCompare(b.key)))
      .toEqual(active.sort().map((k) => json(join(r, 'snapshots', 'active', k, 'snapshot.json'))));
  });

  it('load IPAM (v4 and v6) and host ports through Ipam and HostPorts', async () => {
    const r = root('builtin-root');
    const ipam = new Ipam(join(r, 'network', 'ipam.json'), '10.220.146.0/24');
    expect(await ipam.list()).toEqual(new Map([[BUILTIN_POD, '10.220.146.2']]));
    const ipam6 = new Ipam(join(r, 'network', 'ipam6.json'), 'fd42:4242:4242:4242::/64');
    expect(await ipam6.list()).toEqual(new Map([[BUILTIN_POD, 'fd42:4242:4242:4242::2']]));
    const ports = new HostPorts(join(r, 'network', 'hostports.json'), 'unused', ['ip', 'ip6']);
    expect(await ports.get(BUILTIN_POD)).toEqual([{ protocol: 'TCP', hostPort: 38080, containerPort: 80, hostIp: '' }]);
    // A new allocation continues round-robin after the persisted `last`, and is written as v1.
    const before = json(join(r, 'network', 'ipam.json'));
    expect(await ipam.allocate('another-pod')).toBe('10.220.146.3');
    const after = json(join(r, 'network', 'ipam.json'));
    expect(after).toEqual({ ...before, last: '10.220.146.3', allocations: { [BUILTIN_POD]: '10.220.146.2', 'another-pod': '10.220.146.3' } });
    expect(after.version).toBe(1);
  });

  it('load a CNI result cache through CniNetwork', async () => {
    const r = root('cni-root');
    const cni = new CniNetwork({ root: r });
    expect(await cni.status(CNI_POD)).toEqual({
      ip: '10.253.7.2', prefixLength: 24, gateway: '10.253.7.1', interface: 'eth0', portMappings: [],
    });
  });
});

describe('schema migrations', () => {
  // What a future crib might do: version 2 of the container record moves the monitor's pid
  // into a `monitor` object, and version 2 of the IPAM file renames `allocations`.
  type ContainerV2 = Omit<ContainerRecord, 'monitorPid'> & { monitor?: { pid: number } };
  const CONTAINER_V2 = defineSchema<ContainerV2>('container record', {
    version: 2,
    migrations: {
      1: ({ monitorPid, ...rest }) => ({ ...rest, ...(monitorPid !== undefined ? { monitor: { pid: monitorPid } } : {}) }),
    },
  });

  it('migrates v1 records on load, and persists the migrated form on the next write', async () => {
    const r = root('builtin-root');
    const file = join(r, 'containers', `${STARTED}.json`);
    const v1 = json(file);
    const store = new RecordStore<ContainerV2>(join(r, 'containers'), CONTAINER_V2);
    await store.load();
    const rec = store.get(STARTED)!;
    expect(rec.monitor).toEqual({ pid: v1.monitorPid });
    expect(rec).not.toHaveProperty('monitorPid');
    // Loading does not write: the file is as the old crib left it until the record changes.
    expect(json(file)).toEqual(v1);
    await store.update(STARTED, (c) => (c.finishedAt = '1'));
    const { monitorPid, ...unchanged } = v1;
    expect(json(file)).toEqual({ version: 2, ...unchanged, monitor: { pid: monitorPid }, finishedAt: '1' });
    // And a v2 file loads as is, with no migration run on it again.
    const again = new RecordStore<ContainerV2>(join(r, 'containers'), CONTAINER_V2);
    await again.load();
    expect(again.get(STARTED)).toEqual({ ...unchanged, monitor: { pid: monitorPid }, finishedAt: '1' });
  });

  it('migrates a single-document state file the same way', async () => {
    const r = root('builtin-root');
    const path = join(r, 'network', 'ipam.json');
    const v1 = json(path);
    const v2 = defineSchema<{ subnet: string; last?: string; byPod: Record<string, string> }>('IPAM file', {
      version: 2,
      migrations: { 1: ({ allocations, ...rest }) => ({ ...rest, byPod: allocations }) },
    });
    const doc = new StateFile(path, v2);
    const read = (await doc.read())!;
    expect(read).toEqual({ subnet: v1.subnet, last: v1.last, byPod: v1.allocations });
    await doc.write(read);
    expect(json(path)).toEqual({ version: 2, subnet: v1.subnet, last: v1.last, byPod: v1.allocations });
  });

  it('refuses a record from a newer crib, naming the file and both versions, and leaves it alone', async () => {
    const r = root('builtin-root');
    const path = join(r, 'network', 'ipam.json');
    const future = `${JSON.stringify({ ...json(path), version: 3, allocations: {}, pools: ['new'] })}\n`;
    writeFileSync(path, future);
    const ipam = new Ipam(path, '10.220.146.0/24');
    const err = await ipam.allocate('p').then(() => new Error('allocated'), (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/schema version 3, newer than version 1/);
    expect(readFileSync(path, 'utf8')).toBe(future);

    const cfile = join(r, 'containers', `${STARTED}.json`);
    writeFileSync(cfile, JSON.stringify({ ...json(cfile), version: 2 }));
    const containers = new RecordStore<ContainerRecord>(join(r, 'containers'), CONTAINER_RECORD);
    await expect(containers.load()).rejects.toThrow(new RegExp(`container record ${cfile} has schema version 2, newer than version 1`));
  });

  it('refuses a version that is not a positive integer, and a migration that throws, as data loss', async () => {
    const r = root('builtin-root');
    const path = join(r, 'network', 'ipam.json');
    writeFileSync(path, JSON.stringify({ ...json(path), version: 'two' }));
    await expect(new StateFile(path, IPAM_FILE).read()).rejects.toThrow(DataLossError);
    writeFileSync(path, JSON.stringify({ subnet: '10.0.0.0/24' }));
    const broken = defineSchema<{ subnet: string }>('IPAM file', { version: 2, migrations: { 1: () => { throw new Error('no allocations'); } } });
    await expect(new StateFile(path, broken).read()).rejects.toThrow(/IPAM file .* migrating it from schema version 1 to 2 failed: no allocations/);
  });

  it('refuses a schema without a migration for every older version', () => {
    expect(() => defineSchema('thing', { version: 3, migrations: { 1: (d) => d } })).toThrow(/no migration from version 2/);
    expect(() => defineSchema('thing', { version: 2, migrations: { 1: (d) => d, 2: (d) => d } })).toThrow(/outside 1..1/);
  });
});

describe('pod sandbox record, version 2 (selinuxLevel)', () => {
  const V2_FIXTURE = join(import.meta.dirname, 'fixtures', 'v2', 'pods', `${BUILTIN_POD}.json`);

  it('a version-1 pod record gets the hash level the crib before gave its containers, persisted on the next write', async () => {
    const r = root('builtin-root');
    const file = join(r, 'pods', `${BUILTIN_POD}.json`);
    const v1 = json(file);
    const pods = new RecordStore<SandboxRecord>(join(r, 'pods'), SANDBOX_RECORD);
    await pods.load();
    expect(pods.get(BUILTIN_POD)!.selinuxLevel).toBe(podLevel(BUILTIN_POD));
    await pods.update(BUILTIN_POD, (p) => (p.state = 'notready'));
    expect(json(file)).toEqual({ version: 2, ...v1, state: 'notready', selinuxLevel: podLevel(BUILTIN_POD) });
  });

  it('a version-1 pod whose selinuxOptions name a level gets no level of its own', async () => {
    const r = root('builtin-root');
    const file = join(r, 'pods', `${BUILTIN_POD}.json`);
    const v1 = json(file) as unknown as SandboxRecord;
    v1.config.linux!.securityContext = { selinuxOptions: { user: '', role: '', type: '', level: 's0:c7,c9' } } as never;
    writeFileSync(file, JSON.stringify(v1));
    const pods = new RecordStore<SandboxRecord>(join(r, 'pods'), SANDBOX_RECORD);
    await pods.load();
    expect(pods.get(BUILTIN_POD)).toEqual(v1);
  });

  it('the fixture of a version-2 record loads as written, and a crib of version 1 refuses it', async () => {
    const dir = join(base, `v2-${n++}`);
    cpSync(join(import.meta.dirname, 'fixtures', 'v2'), dir, { recursive: true });
    const written = json(V2_FIXTURE);
    expect(written.version).toBe(2);
    const pods = new RecordStore<SandboxRecord>(join(dir, 'pods'), SANDBOX_RECORD);
    await pods.load();
    const { version: _, ...fields } = written;
    expect(pods.get(BUILTIN_POD)).toEqual(fields);
    expect(pods.get(BUILTIN_POD)!.selinuxLevel).toMatch(/^s0:c\d+,c\d+$/);
    // The crib before: its next container in this pod would run at the hash level, not this one.
    const before = new RecordStore<SandboxRecord>(join(dir, 'pods'), defineSchema<SandboxRecord>('pod sandbox record'));
    await expect(before.load()).rejects.toThrow(/has schema version 2, newer than version 1/);
  });
});
