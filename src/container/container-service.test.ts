// ContainerService over the fake container runtime (test-support/fake-container-runtime.ts), real
// record files in temp dirs, and writable layers that are plain directories: no root, no
// processes. What the service decides is tested here; what the real runtime does is tested by
// native/test/monitor-*.test.ts and critest/.
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { ContainerRuntime } from '../runtime/container-runtime.js';
import { NO_FEATURES } from '../runtime/runtime-features.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { DirLayers } from '../../test-support/dir-layers.js';
import { FakeContainerRuntime } from '../../test-support/fake-container-runtime.js';
import type { ContainerEvent } from './container-events.js';
import { criState, type ContainerRecord } from './container-record.js';
import { ContainerService, type ContainerServiceOptions } from './container-service.js';

const IMAGE = { id: `sha256:${'a'.repeat(64)}`, chainId: undefined, config: { config: { Cmd: ['sh'] } } };
/** An image of one layer whose USER is a name its /etc/passwd gives. */
const APP_IMAGE = { id: `sha256:${'b'.repeat(64)}`, chainId: `sha256:${'c'.repeat(64)}`, config: { config: { Cmd: ['sh'], User: 'app' } } };
/** Another image whose USER is "app", of other layers. */
const OTHER_APP_IMAGE = { id: `sha256:${'d'.repeat(64)}`, chainId: `sha256:${'e'.repeat(64)}`, config: { config: { Cmd: ['sh'], User: 'app' } } };

function podRecord(id: string, logDir: string): SandboxRecord {
  return {
    id, reservedName: `pod_default_${id}_0`, runtimeHandler: 'crib', state: 'ready', createdAt: '1', dir: '/nonexistent',
    hostname: 'pod', hostNetwork: false,
    config: { metadata: { name: 'pod', namespace: 'default', uid: id, attempt: 0 }, logDirectory: logDir } as SandboxRecord['config'],
  };
}

function containerConfig(name: string, attempt = 0): ContainerConfig__Output {
  return {
    metadata: { name, attempt }, image: { image: 'busybox' }, command: ['sleep', '1000'], args: [], logPath: `${name}.log`,
    stdin: false, stdinOnce: false, tty: false,
  } as unknown as ContainerConfig__Output;
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('ContainerService', () => {
  let base: string;
  let rt: FakeContainerRuntime;
  let layers: DirLayers;
  let pod: SandboxRecord;
  const services: ContainerService[] = [];

  /** A service over the same root, state, layers and runtime: a daemon (re)start. */
  async function daemon(o: { recover?: boolean; removalQueue?: ContainerServiceOptions['removalQueue'] } = {}): Promise<ContainerService> {
    const runtimes = {
      get: (h: string): ContainerRuntime => {
        if (h !== 'crib') throw new Error(`no handler ${h}`);
        return rt;
      },
      find: (h: string) => (h === 'crib' ? rt : undefined),
      features: () => NO_FEATURES,
    };
    const svc = new ContainerService({
      root: join(base, 'root'), state: join(base, 'state'), runtimes,
      images: { find: async (ref: string) => ({ busybox: IMAGE, app: APP_IMAGE, 'other-app': OTHER_APP_IMAGE } as Record<string, typeof IMAGE | typeof APP_IMAGE>)[ref] },
      snapshots: layers,
      persistRetry: { firstMs: 50, maxMs: 200 },
      removalQueue: o.removalQueue,
    });
    services.push(svc);
    if (o.recover !== false) await svc.recover();
    return svc;
  }

  const recordFile = (id: string) => join(base, 'root', 'containers', `${id}.json`);
  const onDisk = async (id: string): Promise<ContainerRecord | undefined> =>
    existsSync(recordFile(id)) ? (JSON.parse(await readFile(recordFile(id), 'utf8')) as ContainerRecord) : undefined;

  /**
   * What a start launches before it releases the process: the runtime's create (monitor, parked
   * process), its pids in the record on disk; `extra` goes into the record too. The service must
   * be closed (a crash).
   */
  async function launchAsStartDid(id: string, extra: Partial<ContainerRecord> = {}): Promise<void> {
    const rec = (await onDisk(id))!;
    const created = await rt.create({ id, dir: rec.dir }, { bundle: join(rec.dir, 'bundle'), logPath: rec.logPath, stdin: false, stdinOnce: false, tty: false });
    await writeFile(recordFile(id), JSON.stringify({ ...rec, ...created, ...extra }));
  }

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'crib-containers-'));
    rt = new FakeContainerRuntime();
    layers = new DirLayers(join(base, 'layers'));
    await mkdir(layers.dir);
    pod = podRecord('p'.repeat(64), join(base, 'logs'));
  });
  afterEach(async () => {
    for (const s of services.splice(0)) await s.close();
    await rm(base, { recursive: true, force: true });
  });

  it('creates, starts, stops and removes a container, and leaves nothing behind', async () => {
    const svc = await daemon();
    const events: ContainerEvent[] = [];
    svc.events.subscribe((e) => events.push(e));
    const id = await svc.create(pod, containerConfig('web'), new AbortController().signal);
    expect(criState(await svc.status(id))).toBe('CONTAINER_CREATED');
    // The runtime's create is StartContainer's: a created container is its bundle and record.
    expect(rt.calls).toEqual([]);
    expect(existsSync(join(base, 'state', 'containers', id, 'bundle', 'config.json'))).toBe(true);
    expect(await onDisk(id)).toMatchObject({ created: true });
    expect((await onDisk(id))!.pid).toBeUndefined();

    await svc.start(id);
    expect(criState(await svc.status(id))).toBe('CONTAINER_RUNNING');
    expect(rt.calls.slice(0, 3)).toEqual([`create ${id}`, `watch ${id}`, `start ${id}`]);
    expect(rt.containers.get(id)!.options).toMatchObject({ logPath: join(base, 'logs', 'web.log'), tty: false });
    expect(await onDisk(id)).toMatchObject({ pid: rt.containers.get(id)!.ref.pid, monitorPid: rt.containers.get(id)!.ref.monitorPid });
    await svc.stop(id, 5);
    const st = await svc.status(id);
    expect(criState(st)).toBe('CONTAINER_EXITED');
    expect(st).toMatchObject({ exitCode: 143, reason: 'Error' });
    expect(rt.calls.filter((c) => c.startsWith('kill'))).toEqual([`kill ${id} TERM`]);

    await svc.remove(id);
    expect(() => svc.get(id)).toThrow(/not found/);
    expect(events.map((e) => e.type)).toEqual([
      'CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT',
    ]);
    await svc.removalsSettled();
    expect(rt.containers.get(id)!.state).toBe('deleted');
    expect(await readdir(join(base, 'state', 'containers'))).toEqual([]);
    expect(await readdir(join(base, 'root', 'containers'))).toEqual([]);
    expect(await readdir(layers.dir)).toEqual([]);
  });

  it('answers StartContainer with its outcome on disk: no record write is left to run into the calls after it', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('started'), new AbortController().signal);
    await svc.start(id);
    // Read at once, before any other turn of the event loop: what StartContainer left on disk.
    const rec = JSON.parse(readFileSync(recordFile(id), 'utf8')) as ContainerRecord;
    expect(rec.intent).toBeUndefined();
    expect(rec.startedAt).toBe(svc.get(id).startedAt);
    expect(rec.pid).toBe(rt.containers.get(id)!.ref.pid);
    expect(readdirSync(join(base, 'root', 'containers')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('keeps a started container running when the disk refuses only the start\'s outcome, and writes it once the disk takes it', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('late-outcome'), new AbortController().signal);
    const dir = join(base, 'root', 'containers');
    // The intent is on disk by now; the outcome's temp file is made after the release.
    rt.duringStart = () => {
      renameSync(dir, `${dir}.away`);
      writeFileSync(dir, 'not a directory');
    };
    await svc.start(id);
    rt.duringStart = undefined;
    expect(criState(await svc.status(id))).toBe('CONTAINER_RUNNING');
    expect(rt.containers.get(id)!.state).toBe('running');
    await rm(dir);
    await rename(`${dir}.away`, dir);
    await vi.waitFor(async () => expect((await onDisk(id))?.intent).toBeUndefined(), { timeout: 5000, interval: 20 });
    expect((await onDisk(id))!.startedAt).toBe(svc.get(id).startedAt);
  });

  it('escalates to SIGKILL of every process when the stop signal is ignored', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('stubborn'), new AbortController().signal);
    await svc.start(id);
    rt.ignoredSignals.add('TERM');
    await svc.stop(id, 1);
    expect(await svc.status(id)).toMatchObject({ exitCode: 137 });
    expect(rt.calls.filter((c) => c.startsWith('kill'))).toEqual([`kill ${id} TERM`, `kill ${id} KILL all`]);
  });

  it('stops and removes idempotently, also ids that never existed', async () => {
    const svc = await daemon();
    await svc.stop('e'.repeat(64), 0);
    await svc.remove('e'.repeat(64));
    const id = await svc.create(pod, containerConfig('twice'), new AbortController().signal);
    await svc.start(id);
    await svc.stop(id, 0);
    await svc.stop(id, 0);
    await svc.remove(id);
    await svc.remove(id);
    await svc.stop(id, 0);
    expect(rt.calls.filter((c) => c.startsWith('kill'))).toEqual([`kill ${id} KILL all`]);
  });

  it('hands a create that finished after its caller gave up to the retry of the same name', async () => {
    const svc = await daemon();
    const gaveUp = new AbortController();
    gaveUp.abort();
    const first = await svc.create(pod, containerConfig('slow'), gaveUp.signal);
    const retry = await svc.create(pod, containerConfig('slow'), new AbortController().signal);
    expect(retry).toBe(first);
    expect(svc.list().map((c) => c.id)).toEqual([first]);
    await expect(svc.create(pod, containerConfig('slow'), new AbortController().signal)).rejects.toMatchObject({ grpcCode: 6 });
  });

  it('keeps a created container across a restart, and starts it then', async () => {
    const first = await daemon();
    const id = await first.create(pod, containerConfig('later'), new AbortController().signal);
    await first.close();
    const second = await daemon();
    expect(criState(await second.status(id))).toBe('CONTAINER_CREATED');
    await second.start(id);
    expect(criState(await second.status(id))).toBe('CONTAINER_RUNNING');
    // The name is still taken after the restart.
    await expect(second.create(pod, containerConfig('later'), new AbortController().signal)).rejects.toMatchObject({ grpcCode: 6 });
  });

  it('rolls back a container a crash left half-created, leaving nothing', async () => {
    const first = await daemon();
    // A crash between the runtime's create and the record saying so: the record is still
    // "creating" (created: false) while everything else exists.
    const id = await first.create(pod, containerConfig('torn'), new AbortController().signal);
    await first.close();
    const rec = (await onDisk(id))!;
    await writeFile(recordFile(id), JSON.stringify({ ...rec, created: false }));
    const second = await daemon();
    expect(() => second.get(id)).toThrow(/not found/);
    expect(rt.containers.has(id)).toBe(false);
    expect(existsSync(recordFile(id))).toBe(false);
    expect(await readdir(join(base, 'state', 'containers'))).toEqual([]);
    expect(await readdir(layers.dir)).toEqual([]);
    // The name is free again.
    await second.create(pod, containerConfig('torn'), new AbortController().signal);
  });

  it('looks the image\'s user up in the image\'s layers, and a user it lacks leaves nothing behind', async () => {
    const svc = await daemon();
    const layer = join(base, 'image-layer');
    await mkdir(join(layer, 'etc'), { recursive: true });
    await writeFile(join(layer, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1234:1235::/:/bin/sh\n');
    layers.imageLayers.set(APP_IMAGE.chainId, [layer]);
    const config = { ...containerConfig('app'), image: { image: 'app' } } as ContainerConfig__Output;
    const id = await svc.create(pod, config, new AbortController().signal);
    // The mounted rootfs (an empty dir here) has no /etc/passwd: the user came from the layer.
    expect((await onDisk(id))!.user).toEqual({ uid: 1234, gid: 1235, additionalGids: [1235] });
    const spec = JSON.parse(await readFile(join(base, 'state', 'containers', id, 'bundle', 'config.json'), 'utf8'));
    expect(spec.process.user).toEqual({ uid: 1234, gid: 1235, additionalGids: [1235] });
    await svc.remove(id);
    await svc.removalsSettled();

    // The spec is built while the record is written: its failure rolls back all the same. (An
    // image of other layers: those of a chain id never change, and are read once: see below.)
    const other = join(base, 'other-image-layer');
    await mkdir(join(other, 'etc'), { recursive: true });
    await writeFile(join(other, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    layers.imageLayers.set(OTHER_APP_IMAGE.chainId, [other]);
    await expect(svc.create(pod, { ...config, image: { image: 'other-app' }, metadata: { name: 'nouser', attempt: 0 } } as ContainerConfig__Output, new AbortController().signal))
      .rejects.toThrow(/user "app" not found in the container's \/etc\/passwd/);
    expect(svc.list()).toEqual([]);
    expect(await readdir(join(base, 'root', 'containers'))).toEqual([]);
    expect(await readdir(join(base, 'state', 'containers'))).toEqual([]);
    expect((await readdir(layers.dir)).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('reads an image\'s /etc/passwd and /etc/group from its layers once, for every container of it', async () => {
    const svc = await daemon();
    const layer = join(base, 'image-layer');
    await mkdir(join(layer, 'etc'), { recursive: true });
    await writeFile(join(layer, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1234:1235::/:/bin/sh\n');
    await writeFile(join(layer, 'etc', 'group'), 'root:x:0:\nextra:x:77:app\n');
    layers.imageLayers.set(APP_IMAGE.chainId, [layer]);
    const config = (name: string) => ({ ...containerConfig(name), image: { image: 'app' } }) as ContainerConfig__Output;
    const first = await svc.create(pod, config('first'), new AbortController().signal);
    // The layers of a chain id never change: with the files gone from them, nothing is read.
    await rm(join(layer, 'etc'), { recursive: true });
    const second = await svc.create(pod, config('second'), new AbortController().signal);
    for (const id of [first, second]) expect((await onDisk(id))!.user).toEqual({ uid: 1234, gid: 1235, additionalGids: [77, 1235] });
  });

  it('syncs the created record while the rootfs is mounted, and puts it in place only after the mount', async () => {
    const svc = await daemon();
    const recordsDir = join(base, 'root', 'containers');
    const waiting = async (name: string, release: (mounted: () => void, failed: (err: Error) => void) => Promise<void>) => {
      let mounted!: () => void;
      let failed!: (err: Error) => void;
      layers.mountGate = new Promise<void>((resolve, reject) => {
        mounted = resolve;
        failed = reject;
      });
      const earlier = new Set(await readdir(recordsDir));
      const created = svc.create(pod, containerConfig(name), new AbortController().signal);
      created.catch(() => undefined);
      // The mount is still waiting: the record on disk is the intent; the created one is synced beside it.
      const createdTemp = async (): Promise<boolean> => {
        for (const n of (await readdir(recordsDir)).filter((t) => t.startsWith('.tmp-'))) {
          // The intent's temp file may be seen too, and a temp file still being written is no JSON yet.
          const text = await readFile(join(recordsDir, n), 'utf8').catch(() => '');
          if (/"created": true/.test(text)) return true;
        }
        return false;
      };
      let synced = false;
      for (let i = 0; i < 200 && !synced; i++) {
        await settle();
        synced = await createdTemp();
      }
      expect(synced).toBe(true);
      const ids = (await readdir(recordsDir)).filter((n) => /^[0-9a-f]{64}\.json$/.test(n) && !earlier.has(n));
      expect(ids).toHaveLength(1);
      expect(JSON.parse(await readFile(join(recordsDir, ids[0]!), 'utf8'))).toMatchObject({ created: false });
      await release(mounted, failed);
      return created;
    };
    const id = await waiting('mounted', async (mounted) => mounted());
    expect(await onDisk(id)).toMatchObject({ created: true });
    expect((await readdir(recordsDir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    // A mount that fails: the synced record is dropped with the rest.
    const failing = waiting('unmountable', async (_mounted, failed) => failed(new Error('mount refused')));
    await expect(failing).rejects.toThrow(/mount refused/);
    expect((await readdir(recordsDir)).sort()).toEqual([`${id}.json`]);
    expect(svc.list().map((r) => r.id)).toEqual([id]);
  });

  it('syncs the created record and writes the bundle while the writable layer is made, and mounts only once it is', async () => {
    const svc = await daemon();
    const recordsDir = join(base, 'root', 'containers');
    /** The created record's temp file (beside the intent's, whose temp may be there too), once it is synced. */
    const createdTemp = async (): Promise<boolean> => {
      for (const n of (await readdir(recordsDir)).filter((t) => t.startsWith('.tmp-'))) {
        if (/"created": true/.test(await readFile(join(recordsDir, n), 'utf8').catch(() => ''))) return true;
      }
      return false;
    };
    const layerHeld = async (name: string, release: (made: () => void, failed: (err: Error) => void) => void) => {
      let made!: () => void;
      let failed!: (err: Error) => void;
      layers.prepareGate = new Promise<void>((resolve, reject) => {
        made = resolve;
        failed = reject;
      });
      const containersDir = join(base, 'state', 'containers');
      const earlier = new Set(await readdir(containersDir).catch(() => []));
      const created = svc.create(pod, containerConfig(name), new AbortController().signal);
      created.catch(() => undefined);
      let synced = false;
      for (let i = 0; i < 200 && !synced; i++) {
        await settle();
        synced = await createdTemp();
      }
      expect(synced).toBe(true);
      const [containerDir] = (await readdir(containersDir)).filter((n) => !earlier.has(n));
      const bundle = join(containersDir, containerDir!, 'bundle');
      for (let i = 0; i < 200 && !existsSync(join(bundle, 'config.json')); i++) await settle();
      expect(existsSync(join(bundle, 'config.json'))).toBe(true);
      // Not mounted while the layer is made (the fake's mount makes the mount point).
      expect(existsSync(join(bundle, 'rootfs'))).toBe(false);
      release(made, failed);
      return created;
    };
    const id = await layerHeld('layered', (made) => made());
    expect(await onDisk(id)).toMatchObject({ created: true });
    expect(existsSync(join(base, 'state', 'containers', id, 'bundle', 'rootfs'))).toBe(true);

    // A layer that fails: the synced record and the bundle go with the rest.
    await expect(layerHeld('layerless', (_made, failed) => failed(new Error('no room for the layer')))).rejects.toThrow(/no room for the layer/);
    expect((await readdir(recordsDir)).sort()).toEqual([`${id}.json`]);
    expect(await readdir(join(base, 'state', 'containers'))).toEqual([id]);
    expect(svc.list().map((r) => r.id)).toEqual([id]);
  });

  it('ends a start a crash interrupted in what the runtime says: released is RUNNING, still parked is CREATED', async () => {
    const first = await daemon();
    const parked = await first.create(pod, containerConfig('parked'), new AbortController().signal);
    const released = await first.create(pod, containerConfig('released'), new AbortController().signal);
    await first.close();
    // Crashes after the start intent and the pids were written: before the runtime's start,
    // and after it.
    for (const id of [parked, released]) await launchAsStartDid(id, { intent: { kind: 'start', at: '5000' } });
    await rt.start({ id: released, dir: '' });
    const second = await daemon();
    expect(await second.status(released)).toMatchObject({ startedAt: '5000' });
    expect(criState(await second.status(released))).toBe('CONTAINER_RUNNING');
    // The start never happened: the container stays created, for kubelet to start.
    expect((await second.status(parked)).startedAt).toBeUndefined();
    expect(criState(await second.status(parked))).toBe('CONTAINER_CREATED');
    for (const id of [parked, released]) expect((await second.status(id)).intent).toBeUndefined();
    expect(rt.containers.get(parked)!.state).toBe('parked');
    expect(rt.calls.filter((c) => c === `start ${parked}`)).toHaveLength(0);
    await second.start(parked);
    expect(criState(await second.status(parked))).toBe('CONTAINER_RUNNING');
    expect(rt.containers.get(parked)!.state).toBe('running');
  });

  it('records a container started when the runtime start fails because a start from before a crash released it', async () => {
    const first = await daemon();
    const id = await first.create(pod, containerConfig('raced'), new AbortController().signal);
    const other = await first.create(pod, containerConfig('dead'), new AbortController().signal);
    await first.close();
    // Parked with their pids recorded (a crashed start, or a daemon that created in the runtime
    // at CreateContainer).
    for (const c of [id, other]) await launchAsStartDid(c);
    const svc = await daemon();
    // The runtime start a killed daemon left running finishes after start-up looked.
    await rt.start({ id, dir: '' });
    await svc.start(id);
    expect(criState(await svc.status(id))).toBe('CONTAINER_RUNNING');
    // A start that fails for any other reason still fails.
    rt.containers.get(other)!.state = 'deleted';
    await expect(svc.start(other)).rejects.toThrow(/does not exist/);
    expect(criState(await svc.status(other))).toBe('CONTAINER_CREATED');
  });

  it('finishes a removal a crash interrupted', async () => {
    const first = await daemon();
    const id = await first.create(pod, containerConfig('goner'), new AbortController().signal);
    await first.start(id);
    await first.close();
    const rec = (await onDisk(id))!;
    await writeFile(recordFile(id), JSON.stringify({ ...rec, intent: { kind: 'remove', at: '1' } }));
    const second = await daemon();
    expect(second.list()).toEqual([]);
    expect(existsSync(recordFile(id))).toBe(false);
    expect(rt.containers.get(id)!.state).toBe('deleted');
  });

  it('answers a removal before deleting the remains, which are gone once the background deletion ends', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('slow'), new AbortController().signal);
    await svc.start(id);
    await svc.stop(id, 0);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const remove = layers.remove.bind(layers);
    layers.remove = async (key: string) => {
      await held;
      await remove(key);
    };
    await svc.remove(id);
    // Answered while the writable layer's deletion waits: gone for every read, marked on disk.
    expect(() => svc.get(id)).toThrow(/not found/);
    expect(svc.list()).toEqual([]);
    expect(svc.removalsInProgress).toBe(1);
    // The marker; the exit StopContainer recorded may still be being written beside it (the
    // removal does not wait for that write, which deletes its file once it sees the marker).
    expect((await readdir(join(base, 'root', 'containers'))).filter((n) => !n.startsWith('.tmp-') && n !== `${id}.json`))
      .toEqual([`${id}.json.removing`]);
    expect(await readdir(layers.dir)).toEqual([id]);
    // The same name can be created again at once (a new id, dirs of its own).
    const again = await svc.create(pod, containerConfig('slow'), new AbortController().signal);
    expect(again).not.toBe(id);
    release();
    await svc.removalsSettled();
    expect(svc.removalsInProgress).toBe(0);
    expect(await readdir(join(base, 'state', 'containers'))).toEqual([again]);
    expect(await readdir(join(base, 'root', 'containers'))).toEqual([`${again}.json`]);
    expect(await readdir(layers.dir)).toEqual([again]);
    expect(rt.containers.get(id)!.state).toBe('deleted');
  });

  it('removes the writable layer while the runtime deletes its state, unless the spec has poststop hooks', async () => {
    const svc = await daemon();
    const ids = [
      await svc.create(pod, containerConfig('plain'), new AbortController().signal),
      await svc.create(pod, containerConfig('hooked'), new AbortController().signal),
    ];
    const config = join(base, 'state', 'containers', ids[1]!, 'bundle', 'config.json');
    const spec = JSON.parse(await readFile(config, 'utf8')) as Record<string, unknown>;
    await writeFile(config, JSON.stringify({ ...spec, hooks: { poststop: [{ path: '/bin/true' }] } }));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    rt.duringDelete = () => held;
    for (const id of ids) await svc.remove(id);
    await vi.waitFor(async () => expect(await readdir(layers.dir)).toEqual([ids[1]]), { timeout: 5000, interval: 10 });
    await settle();
    // The hooked one's layer waits for the runtime (its poststop hook may read the rootfs).
    expect(await readdir(layers.dir)).toEqual([ids[1]]);
    release();
    await svc.removalsSettled();
    expect(await readdir(layers.dir)).toEqual([]);
  });

  it('removes a pod\'s container for the pod\'s removal, waiting for its runtime state (its cgroup is in the pod\'s), not the rest', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('inpod'), new AbortController().signal);
    await svc.start(id);
    let releaseRuntime!: () => void;
    const runtimeHeld = new Promise<void>((r) => (releaseRuntime = r));
    let deletes = 0;
    rt.duringDelete = async () => {
      deletes += 1;
      await runtimeHeld;
    };
    let releaseLayer!: () => void;
    const layerHeld = new Promise<void>((r) => (releaseLayer = r));
    let removes = 0;
    const remove = layers.remove.bind(layers);
    layers.remove = async (key: string) => {
      removes += 1;
      await layerHeld;
      await remove(key);
    };
    let answered = false;
    const first = svc.removeForPod(id).then(() => (answered = true));
    await vi.waitFor(() => expect(deletes).toBe(1), { timeout: 5000, interval: 10 });
    // Gone for every read at once, but the pod's removal waits for the runtime's delete.
    expect(svc.list()).toEqual([]);
    await settle();
    expect(answered).toBe(false);
    // Asked again (a retried RemovePodSandbox) while the deletion runs: it does not begin another.
    const again = svc.removeForPod(id);
    releaseRuntime();
    await Promise.all([first, again]);
    // Answered with the writable layer's deletion still held: the rest of the remains go after.
    expect(deletes).toBe(1);
    expect(rt.containers.get(id)!.state).toBe('deleted');
    await vi.waitFor(() => expect(removes).toBe(1), { timeout: 5000, interval: 10 });
    expect(svc.removalsInProgress).toBe(1);
    expect(await readdir(layers.dir)).toEqual([id]);
    // A pod's removal asked now has nothing to wait for.
    await svc.removeForPod(id);
    releaseLayer();
    await svc.removalsSettled();
    expect(removes).toBe(1);
    expect(svc.removalsInProgress).toBe(0);
    expect(svc.idsInPod(pod.id)).toEqual([]);
    expect(await readdir(layers.dir)).toEqual([]);
    expect(await readdir(join(base, 'state', 'containers'))).toEqual([]);
    expect(await readdir(join(base, 'root', 'containers'))).toEqual([]);
  });

  it('tries a failed deletion again at once for a pod\'s removal, not after its back-off', async () => {
    const svc = await daemon({ removalQueue: { width: 4, capacity: 16, firstRetryMs: 60_000, maxRetryMs: 60_000 } });
    const id = await svc.create(pod, containerConfig('stuck'), new AbortController().signal);
    let failing = true;
    let tries = 0;
    rt.duringDelete = async () => {
      tries += 1;
      if (failing) throw new Error('EBUSY: the runtime could not remove the cgroup');
    };
    await svc.remove(id);
    await vi.waitFor(() => expect(tries).toBe(1), { timeout: 5000, interval: 10 });
    // The deletion now waits a minute to be tried again; a pod's removal tries it at once.
    await expect(svc.removeForPod(id)).rejects.toThrow(/EBUSY/);
    expect(tries).toBe(2);
    failing = false;
    await svc.removeForPod(id);
    expect(tries).toBe(3);
    await svc.removalsSettled();
    expect(svc.removalsInProgress).toBe(0);
    expect(await readdir(layers.dir)).toEqual([]);
  });

  it('does not fail a pod\'s removal for a container\'s remains that fail after its runtime state is gone', async () => {
    const svc = await daemon({ removalQueue: { width: 4, capacity: 16, firstRetryMs: 20, maxRetryMs: 20 } });
    const id = await svc.create(pod, containerConfig('layer-stuck'), new AbortController().signal);
    await svc.start(id);
    const remove = layers.remove.bind(layers);
    let failing = true;
    let tries = 0;
    layers.remove = async (key: string) => {
      tries += 1;
      if (failing) throw Object.assign(new Error(`EBUSY: resource busy, rmdir ${key}`), { code: 'EBUSY' });
      await remove(key);
    };
    await svc.removeForPod(id);
    expect(rt.containers.get(id)!.state).toBe('deleted');
    // The queue keeps trying the rest on its own.
    await vi.waitFor(() => expect(tries).toBeGreaterThanOrEqual(2), { timeout: 5000, interval: 10 });
    failing = false;
    await vi.waitFor(() => expect(svc.removalsInProgress).toBe(0), { timeout: 5000, interval: 10 });
    expect(await readdir(layers.dir)).toEqual([]);
  });

  it('makes a removal wait for room while the deletion queue is full, never for its own deletion', async () => {
    const svc = await daemon({ removalQueue: { width: 1, capacity: 2, firstRetryMs: 10, maxRetryMs: 10 } });
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c']) ids.push(await svc.create(pod, containerConfig(name), new AbortController().signal));
    const gates = new Map<string, () => void>();
    const remove = layers.remove.bind(layers);
    layers.remove = async (key: string) => {
      await new Promise<void>((r) => gates.set(key, r));
      await remove(key);
    };
    await svc.remove(ids[0]!);
    await svc.remove(ids[1]!);
    // Two held (one deleting, one waiting its turn): the third removal waits for room.
    let third = false;
    const removing = svc.remove(ids[2]!).then(() => (third = true));
    await vi.waitFor(() => expect(gates.has(ids[0]!)).toBe(true), { timeout: 5000, interval: 10 });
    await settle();
    expect(third).toBe(false);
    expect(svc.removalsInProgress).toBe(3);
    gates.get(ids[0]!)!();
    // Room again: it answers while its own deletion still waits behind the second.
    await removing;
    expect((await readdir(layers.dir)).sort()).toEqual([ids[1]!, ids[2]!].sort());
    await vi.waitFor(() => expect(gates.has(ids[1]!)).toBe(true), { timeout: 5000, interval: 10 });
    gates.get(ids[1]!)!();
    await vi.waitFor(() => expect(gates.has(ids[2]!)).toBe(true), { timeout: 5000, interval: 10 });
    gates.get(ids[2]!)!();
    await svc.removalsSettled();
    expect(svc.removalsInProgress).toBe(0);
    expect(await readdir(layers.dir)).toEqual([]);
    expect(await readdir(join(base, 'root', 'containers'))).toEqual([]);
  });

  it('tries a failed background deletion again until it succeeds; one a stop gave up on is finished at start-up', async () => {
    const first = await daemon({ removalQueue: { width: 4, capacity: 16, firstRetryMs: 20, maxRetryMs: 40 } });
    const ids = [
      await first.create(pod, containerConfig('a'), new AbortController().signal),
      await first.create(pod, containerConfig('b'), new AbortController().signal),
    ];
    for (const id of ids) await first.start(id);
    const remove = layers.remove.bind(layers);
    const failing = new Set(ids);
    const tries = new Map<string, number>();
    layers.remove = async (key: string) => {
      tries.set(key, (tries.get(key) ?? 0) + 1);
      if (failing.has(key)) throw Object.assign(new Error(`EBUSY: resource busy, rmdir ${key}`), { code: 'EBUSY' });
      await remove(key);
    };
    for (const id of ids) await first.remove(id);
    // Failing, tried again and again; the containers stay gone for every read meanwhile.
    await vi.waitFor(() => expect(Math.min(...ids.map((id) => tries.get(id) ?? 0))).toBeGreaterThanOrEqual(3), { timeout: 5000, interval: 10 });
    expect(first.list()).toEqual([]);
    expect((await readdir(join(base, 'root', 'containers'))).sort()).toEqual(ids.map((id) => `${id}.json.removing`).sort());
    expect((await readdir(layers.dir)).sort()).toEqual([...ids].sort());
    // The pod's removal neither fails with them nor waits for them: their runtime state is gone.
    expect(first.idsInPod(pod.id).sort()).toEqual([...ids].sort());
    await first.removeForPod(ids[0]!);
    expect(rt.containers.get(ids[0]!)!.state).toBe('deleted');
    // The disk lets go of the first: its next try deletes it.
    failing.delete(ids[0]!);
    await vi.waitFor(async () => expect(await readdir(layers.dir)).toEqual([ids[1]]), { timeout: 5000, interval: 10 });
    // Its layer goes before its record: the deletion ends a few file operations later.
    await vi.waitFor(() => expect(first.removalsInProgress).toBe(1), { timeout: 5000, interval: 10 });
    // The daemon stops: the other is tried once more, then left, marked, to the next start-up.
    const before = tries.get(ids[1]!)!;
    await first.close();
    services.splice(services.indexOf(first), 1);
    // Once more at most (one running when the stop came is not tried again), then never again.
    const after = tries.get(ids[1]!)!;
    expect(after - before).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(tries.get(ids[1]!)).toBe(after);
    expect(await readdir(join(base, 'root', 'containers'))).toEqual([`${ids[1]}.json.removing`]);
    failing.clear();
    const second = await daemon();
    expect(second.list()).toEqual([]);
    expect(await readdir(join(base, 'root', 'containers'))).toEqual([]);
    expect(await readdir(join(base, 'state', 'containers'))).toEqual([]);
    expect(await readdir(layers.dir)).toEqual([]);
    expect(rt.containers.get(ids[1]!)!.state).toBe('deleted');
  });

  it('records an exit the runtime reports, with the stopped event, and tells the runtime once it is on disk', async () => {
    const svc = await daemon();
    const events: string[] = [];
    svc.events.subscribe((e) => events.push(e.type));
    const id = await svc.create(pod, containerConfig('job'), new AbortController().signal);
    await svc.start(id);
    rt.exit(id, 3);
    expect(await svc.status(id)).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(events.at(-1)).toBe('CONTAINER_STOPPED_EVENT');
    // Written in the background: wait for it rather than for a fixed time (a loaded machine).
    await vi.waitFor(async () => {
      expect(await onDisk(id)).toMatchObject({ exitCode: 3 });
      expect(rt.containers.get(id)!.exitAcked).toBe(true);
    }, { timeout: 5000, interval: 20 });
  });

  it('deletes an exited container\'s runtime state once its exit is on disk and the monitor told, before any removal', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('exits'), new AbortController().signal);
    await svc.start(id);
    let seen: { disk?: ContainerRecord; acked: boolean } | undefined;
    rt.duringDeleteExited = async (cid) => {
      seen = { disk: await onDisk(cid), acked: rt.containers.get(cid)!.exitAcked };
    };
    rt.exit(id, 0);
    await vi.waitFor(() => expect(rt.containers.get(id)!.state).toBe('deleted'), { timeout: 5000, interval: 10 });
    expect(seen?.disk).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(seen?.acked).toBe(true);
    // Still listed, EXITED, until kubelet removes it.
    expect(await svc.status(id)).toMatchObject({ exitCode: 0 });
    expect(criState(await svc.status(id))).toBe('CONTAINER_EXITED');
    await svc.remove(id);
    await svc.removalsSettled();
    expect(rt.calls.filter((c) => c.endsWith(id)).filter((c) => c.startsWith('delete'))).toEqual([`delete-exited ${id}`, `delete ${id}`]);
  });

  it('has a removal wait for the runtime deletion in flight before it deletes the rest, and redo one that failed', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('held'), new AbortController().signal);
    await svc.start(id);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    rt.duringDeleteExited = () => held;
    await svc.stop(id, 0);
    await vi.waitFor(() => expect(rt.calls).toContain(`delete-exited ${id}`), { timeout: 5000, interval: 10 });
    await svc.remove(id);
    await settle();
    // The background removal waits behind the runtime's deletion: nothing else of it is gone yet.
    expect(rt.calls).not.toContain(`delete ${id}`);
    expect(await readdir(layers.dir)).toEqual([id]);
    release();
    await svc.removalsSettled();
    expect(await readdir(layers.dir)).toEqual([]);
    expect(rt.calls.indexOf(`delete-exited ${id}`)).toBeLessThan(rt.calls.indexOf(`delete ${id}`));

    // A deletion the runtime refused leaves the state: the removal's delete removes it.
    rt.duringDeleteExited = undefined;
    rt.failDeleteExited = 'refused';
    const other = await svc.create(pod, containerConfig('refused'), new AbortController().signal);
    await svc.start(other);
    await svc.stop(other, 0);
    await vi.waitFor(() => expect(rt.calls).toContain(`delete-exited ${other}`), { timeout: 5000, interval: 10 });
    await settle();
    expect(rt.containers.get(other)!.state).toBe('exited');
    await svc.remove(other);
    await svc.removalsSettled();
    expect(rt.containers.get(other)!.state).toBe('deleted');
  });

  it('deletes at start-up the runtime state of an exited container that a crash kept from being deleted', async () => {
    const first = await daemon();
    const id = await first.create(pod, containerConfig('crashed'), new AbortController().signal);
    await first.start(id);
    rt.failDeleteExited = 'the daemon died';
    rt.exit(id, 1);
    await vi.waitFor(() => expect(rt.calls).toContain(`delete-exited ${id}`), { timeout: 5000, interval: 10 });
    await first.close();
    expect(rt.containers.get(id)!.state).toBe('exited');
    rt.failDeleteExited = undefined;
    const second = await daemon();
    await vi.waitFor(() => expect(rt.containers.get(id)!.state).toBe('deleted'), { timeout: 5000, interval: 10 });
    expect(await second.status(id)).toMatchObject({ exitCode: 1 });
  });

  it('reports STARTED before STOPPED for a process that exits while it is being started', async () => {
    const svc = await daemon();
    const events: string[] = [];
    svc.events.subscribe((e) => events.push(e.type));
    const id = await svc.create(pod, containerConfig('quick'), new AbortController().signal);
    rt.duringStart = (cid) => rt.exit(cid, 0);
    await svc.start(id);
    expect(events).toEqual(['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT']);
    const st = await svc.status(id);
    expect(st).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(BigInt(st.finishedAt!)).toBeGreaterThanOrEqual(BigInt(st.startedAt!));
  });

  it('ends a container whose monitor died in the truth: its running process killed, EXITED 137', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('orphan'), new AbortController().signal);
    await svc.start(id);
    rt.killMonitor(id, { processAlive: true });
    await vi.waitFor(async () => expect(await svc.status(id)).toMatchObject({ exitCode: 137 }), { timeout: 5000, interval: 20 });
    const st = await svc.status(id);
    expect(st).toMatchObject({ exitCode: 137, reason: 'Error' });
    expect(st.message).toMatch(/crib-monitor \(pid \d+\) is gone.*was still running and was killed/);
    expect(rt.calls).toContain(`kill-orphan ${id}`);
    expect(rt.containers.get(id)!.processAlive).toBe(false);
    // Stop and remove just work.
    await svc.stop(id, 10);
    await svc.remove(id);
  });

  it('ends a container whose monitor died with its process in the truth too: EXITED 255, no status left', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('vanished'), new AbortController().signal);
    await svc.start(id);
    rt.killMonitor(id, { processAlive: false });
    await vi.waitFor(async () => expect(await svc.status(id)).toMatchObject({ exitCode: 255 }), { timeout: 5000, interval: 20 });
    const st = await svc.status(id);
    expect(st).toMatchObject({ exitCode: 255, reason: 'Unknown' });
    expect(st.message).toMatch(/crib-monitor \(pid \d+\) is gone.*process is gone too/);
  });

  it('stops promptly a container whose monitor dies while the stop waits for the exit', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('dies-during-stop'), new AbortController().signal);
    await svc.start(id);
    rt.ignoredSignals.add('TERM');
    const t0 = Date.now();
    const stopping = svc.stop(id, 30);
    await settle();
    rt.killMonitor(id, { processAlive: true });
    await stopping;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await svc.status(id)).toMatchObject({ exitCode: 137 });
  });

  it('finds the truth at start-up about a monitor that died while the daemon was down', async () => {
    const first = await daemon();
    const id = await first.create(pod, containerConfig('died-offline'), new AbortController().signal);
    await first.start(id);
    await first.close();
    rt.killMonitor(id, { processAlive: true });
    const second = await daemon();
    // recover() resolves only once the truth is known: no RUNNING-while-dead window.
    expect(await second.status(id)).toMatchObject({ exitCode: 137, reason: 'Error' });
    expect(rt.containers.get(id)!.processAlive).toBe(false);
  });

  it('answers List and Status from memory while the disk refuses writes, and writes the exit once it can', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('full-disk'), new AbortController().signal);
    await svc.start(id);
    // The records dir becomes unwritable: a file where the directory was (ENOTDIR on write).
    const dir = join(base, 'root', 'containers');
    await rename(dir, `${dir}.away`);
    await writeFile(dir, 'not a directory');
    rt.exit(id, 7);
    await settle();
    expect(svc.list().map((c) => [c.id, criState(c), c.exitCode])).toEqual([[id, 'CONTAINER_EXITED', 7]]);
    expect(await svc.status(id)).toMatchObject({ exitCode: 7 });
    expect(rt.containers.get(id)!.exitAcked).toBe(false);
    // Not on disk: the runtime's state stays (a crash now must find the container's remains).
    expect(rt.calls).not.toContain(`delete-exited ${id}`);
    // Still nothing on disk after a few retries; then the disk comes back.
    await new Promise((r) => setTimeout(r, 300));
    await rm(dir);
    await rename(`${dir}.away`, dir);
    for (let t = 0; t < 100 && !(await onDisk(id))?.finishedAt; t++) await new Promise((r) => setTimeout(r, 50));
    expect(await onDisk(id)).toMatchObject({ exitCode: 7, reason: 'Error' });
    expect(rt.containers.get(id)!.exitAcked).toBe(true);
    await vi.waitFor(() => expect(rt.calls).toContain(`delete-exited ${id}`), { timeout: 5000, interval: 10 });
    // And a restart reads it back.
    await svc.close();
    const second = await daemon();
    expect(await second.status(id)).toMatchObject({ exitCode: 7 });
  });

  it('refuses to start when the start intent cannot be written, and changes nothing', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('no-room'), new AbortController().signal);
    const dir = join(base, 'root', 'containers');
    await rename(dir, `${dir}.away`);
    await writeFile(dir, 'not a directory');
    await expect(svc.start(id)).rejects.toThrow();
    // The runtime's create ran; the record refused, it was undone.
    expect(rt.calls.filter((c) => !c.startsWith('delete'))).toEqual([`create ${id}`]);
    expect(rt.containers.get(id)!.state).toBe('deleted');
    expect(criState(await svc.status(id))).toBe('CONTAINER_CREATED');
    expect((await svc.status(id)).intent).toBeUndefined();
    await rm(dir);
    await rename(`${dir}.away`, dir);
    await svc.start(id);
    expect(criState(await svc.status(id))).toBe('CONTAINER_RUNNING');
  });

  it('applies resources updated before the start in the spec the runtime\'s create reads, not in the runtime', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('limited'), new AbortController().signal);
    const specFile = join(base, 'state', 'containers', id, 'bundle', 'config.json');
    const devices = (JSON.parse(await readFile(specFile, 'utf8')) as { linux: { resources: { devices: unknown } } }).linux.resources.devices;
    const resources = (r: Record<string, unknown>) => ({ hugepageLimits: [], unified: {}, ...r }) as never;
    await svc.updateResources(id, resources({ memoryLimitInBytes: '67108864', cpuShares: '512' }));
    expect(rt.calls).toEqual([]);
    const spec = JSON.parse(await readFile(specFile, 'utf8')) as { linux: { resources: Record<string, unknown> } };
    expect(spec.linux.resources).toMatchObject({ memory: { limit: 67108864 }, cpu: { shares: 512 }, devices });
    expect((await svc.status(id)).config.linux?.resources).toMatchObject({ memoryLimitInBytes: '67108864' });
    await svc.start(id);
    // Once the runtime has the container, an update goes to it.
    await svc.updateResources(id, resources({ memoryLimitInBytes: '33554432' }));
    const updates = rt.calls.filter((c) => c.startsWith('update'));
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatch(new RegExp(`^update ${id} \\{"memory":\\{"limit":33554432[,}]`));
  });

  it('stops a created container without asking the runtime (nothing runs), as exited 137', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('never'), new AbortController().signal);
    await svc.stop(id, 10);
    expect(await svc.status(id)).toMatchObject({ exitCode: 137, reason: 'Error' });
    expect(criState(await svc.status(id))).toBe('CONTAINER_EXITED');
    // Once the exit is on disk a monitor would be told it may go: there is none to tell.
    await vi.waitFor(async () => expect((await onDisk(id))?.exitCode).toBe(137), { timeout: 5000, interval: 10 });
    await new Promise((r) => setTimeout(r, 20));
    expect(rt.calls).toEqual([]);
    await svc.remove(id);
    await svc.removalsSettled();
    expect(rt.calls.filter((c) => !c.startsWith('delete'))).toEqual([]);
    expect(rt.containers.has(id)).toBe(false);
  });

  it('undoes a start whose runtime start fails after the create: created again, nothing in the runtime', async () => {
    const svc = await daemon();
    const id = await svc.create(pod, containerConfig('flaky'), new AbortController().signal);
    const start = rt.start.bind(rt);
    rt.start = async () => {
      throw new Error('runtime start refused');
    };
    await expect(svc.start(id)).rejects.toThrow(/runtime start refused/);
    expect(criState(await svc.status(id))).toBe('CONTAINER_CREATED');
    expect(rt.containers.get(id)!.state).toBe('deleted');
    await svc.close();
    // On disk too: a restart finds a created container without pids or intent.
    const rec = (await onDisk(id))!;
    expect([rec.pid, rec.monitorPid, rec.intent]).toEqual([undefined, undefined, undefined]);
    rt.start = start;
    const second = await daemon();
    await second.start(id);
    expect(criState(await second.status(id))).toBe('CONTAINER_RUNNING');
    expect(rt.containers.get(id)!.state).toBe('running');
  });

  it('undoes at start-up what a start the crash interrupted launched before its pids were recorded', async () => {
    const first = await daemon();
    const id = await first.create(pod, containerConfig('orphan'), new AbortController().signal);
    await first.close();
    // The monitor and its parked process exist; the record has the start's intent and no pids.
    const rec = (await onDisk(id))!;
    await rt.create({ id, dir: rec.dir }, { bundle: join(rec.dir, 'bundle'), logPath: rec.logPath, stdin: false, stdinOnce: false, tty: false });
    await writeFile(recordFile(id), JSON.stringify({ ...rec, intent: { kind: 'start', at: '5000' } }));
    const second = await daemon();
    expect(rt.containers.get(id)!.state).toBe('deleted');
    const st = await second.status(id);
    expect(criState(st)).toBe('CONTAINER_CREATED');
    expect([st.pid, st.intent]).toEqual([undefined, undefined]);
    await second.start(id);
    expect(criState(await second.status(id))).toBe('CONTAINER_RUNNING');
  });
});
