// SandboxService over fakes of what needs root (test-support/fake-pinns.ts for crib-pinns,
// fake-shm-mounts.ts for the /dev/shm tmpfs, fake-pod-network.ts for the bridge or CNI), real
// record files and real pod files in temp dirs: no root, no namespaces, no processes. What the
// service decides (records, rollback, names, recovery) is tested here; what crib-pinns and the
// networks do is tested by root-test/sandbox/, root-test/network/ and critest/.
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlreadyExistsError, FailedPreconditionError, InternalError, InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import { FakePinns } from '../../test-support/fake-pinns.js';
import { FakePodNetwork } from '../../test-support/fake-pod-network.js';
import { FakeShmMounts } from '../../test-support/fake-shm-mounts.js';
import { McsLevels } from './mcs-levels.js';
import { SandboxService, type PodContainers } from './sandbox-service.js';

/** The container side as the sandbox service sees it: containers per pod, and what was asked. */
class PodContainersLog implements PodContainers {
  readonly byPod = new Map<string, string[]>();
  readonly calls: string[] = [];
  idsInPod(podId: string): string[] {
    return [...(this.byPod.get(podId) ?? [])];
  }
  async stopForPod(id: string): Promise<void> {
    this.calls.push(`stop ${id}`);
  }
  async removeForPod(id: string): Promise<void> {
    this.calls.push(`remove ${id}`);
    for (const ids of this.byPod.values()) if (ids.includes(id)) ids.splice(ids.indexOf(id), 1);
  }
}

function podConfig(name: string, o: { attempt?: number; sharedPid?: boolean; hostNetwork?: boolean; dns?: string[]; logDirectory?: string } = {}): PodSandboxConfig__Output {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: o.attempt ?? 0 },
    hostname: `${name}-host`,
    logDirectory: o.logDirectory ?? '',
    dnsConfig: o.dns ? { servers: o.dns, searches: [], options: [] } : null,
    portMappings: [],
    labels: {},
    annotations: {},
    linux: {
      cgroupParent: '',
      sysctls: {},
      securityContext: {
        namespaceOptions: {
          network: o.hostNetwork ? 'NODE' : 'POD', pid: o.sharedPid ? 'POD' : 'CONTAINER', ipc: 'POD', targetId: '', userNsOptions: null,
        },
      },
    },
  } as unknown as PodSandboxConfig__Output;
}

const live = () => new AbortController().signal;

describe('SandboxService', () => {
  let base: string;
  let root: string;
  let state: string;
  let pinns: FakePinns;
  let shm: FakeShmMounts;
  let net: FakePodNetwork;
  let containers: PodContainersLog;

  /** A service over the same root, state and fakes: a daemon (re)start. */
  async function daemon(o: { recover?: boolean; mcsLevels?: McsLevels } = {}): Promise<SandboxService> {
    const svc = new SandboxService({
      root, state, network: net, handlers: new Set(['crib', 'runc']), defaultHandler: 'crib', containers, namespaces: pinns, shm,
      ...(o.mcsLevels ? { selinux: true, mcsLevels: o.mcsLevels } : {}),
    });
    if (o.recover !== false) await svc.recover();
    return svc;
  }

  const recordFiles = async () => (await readdir(join(root, 'pods')).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  const podDirs = async () => readdir(join(state, 'pods')).catch(() => [] as string[]);

  /** Nothing of any pod is left: no record, no dir, no pin, no init, no shm, no address. */
  async function expectNothingLeft(svc: SandboxService): Promise<void> {
    expect(svc.list()).toEqual([]);
    expect(await recordFiles()).toEqual([]);
    expect(await podDirs()).toEqual([]);
    expect([...pinns.pinned.keys()]).toEqual([]);
    expect([...pinns.podInits]).toEqual([]);
    expect([...shm.mounted]).toEqual([]);
    expect([...net.attached.keys()]).toEqual([]);
  }

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'crib-sandbox-svc-'));
    root = join(base, 'root');
    state = join(base, 'state');
    pinns = new FakePinns();
    shm = new FakeShmMounts();
    net = new FakePodNetwork();
    containers = new PodContainersLog();
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('RunPodSandbox pins the namespaces, attaches the network, writes the pod files and a ready record', async () => {
    const svc = await daemon();
    const id = await svc.run(podConfig('web', { logDirectory: join(base, 'logs', 'web') }), '', live());
    const rec = svc.get(id);
    const dir = join(state, 'pods', id);
    expect(rec).toMatchObject({ state: 'ready', runtimeHandler: 'crib', dir, hostname: 'web-host', reservedName: 'web_default_uid-web_0' });
    expect(rec.podInitPid).toBeUndefined();
    expect(svc.pidNamespace(rec)).toBeUndefined();
    // The namespaces are pinned under the pod's dir and the network is set up in the pinned netns.
    expect(pinns.pinned.get(join(dir, 'ns'))).toMatchObject({ net: true, ipc: true, uts: true, hostname: 'web-host' });
    expect(rec.netnsPath).toBe(join(dir, 'ns', 'net'));
    expect(net.attached.get(id)?.netnsPath).toBe(rec.netnsPath);
    expect(net.setupOptions.get(id)).toMatchObject({ hostname: 'web-host', podName: 'web', podNamespace: 'default' });
    // /etc/hosts names the pod by the address the network gave it; /dev/shm is the pod's own.
    expect(await readFile(join(dir, 'files', 'hosts'), 'utf8')).toContain(`${rec.network!.ip}\tweb-host\n`);
    expect(await readFile(join(dir, 'files', 'hostname'), 'utf8')).toBe('web-host\n');
    expect([...shm.mounted]).toEqual([join(dir, 'files', 'shm')]);
    expect(existsSync(join(base, 'logs', 'web'))).toBe(true);
    // The record is on disk before the call returns: a new daemon finds the pod ready.
    expect(await recordFiles()).toEqual([`${id}.json`]);
    const after = await daemon();
    expect(after.get(id)).toMatchObject({ state: 'ready', network: rec.network, netnsPath: rec.netnsPath });
  });

  describe('a network that attaches the pod while its namespaces are pinned (the built-in one)', () => {
    /** The fake network with prepareAttach: the address taken now, the attach left to the pinning. */
    function attachingNetwork(onPrepare: (podId: string) => void): void {
      Object.assign(net, {
        prepareAttach: async (podId: string) => {
          onPrepare(podId);
          const status = await net.setup(podId, '(attached by the pinning)');
          return { pinnsArgs: ['--attach'], ip: status.ip, finish: async () => status };
        },
      });
    }

    it('takes the pod\'s addresses while the record is written, and attaches it in the pinning', async () => {
      const svc = await daemon();
      let recordAtPrepare: boolean | undefined;
      attachingNetwork((podId) => (recordAtPrepare = existsSync(join(root, 'pods', `${podId}.json`))));
      const id = await svc.run(podConfig('web'), '', live());
      // Not after the record's fsyncs: start-up frees addresses of pods it has no record of.
      expect(recordAtPrepare).toBe(false);
      expect(pinns.pinned.get(join(state, 'pods', id, 'ns'))?.network).toEqual(['--attach']);
      expect(svc.get(id)).toMatchObject({ state: 'ready', network: { ip: net.attached.get(id)!.status.ip } });
    });

    it('writes the pod\'s files and mounts its /dev/shm while the namespaces are pinned', async () => {
      const svc = await daemon();
      attachingNetwork(() => undefined);
      const pin = pinns.pin.bind(pinns);
      let filesDuringPin: { hosts: string; shm: boolean } | undefined;
      pinns.pin = async (opts) => {
        // The files are written beside the pinning: wait (a bounded time) for them.
        const files = join(dirname(opts.dir), 'files');
        for (let i = 0; i < 200 && !(existsSync(join(files, 'hostname')) && shm.mounted.size > 0); i++) await new Promise((r) => setTimeout(r, 5));
        filesDuringPin = { hosts: await readFile(join(files, 'hosts'), 'utf8').catch(() => ''), shm: shm.mounted.has(join(files, 'shm')) };
        return pin(opts);
      };
      const id = await svc.run(podConfig('web'), '', live());
      const ip = net.attached.get(id)!.status.ip;
      expect(filesDuringPin).toEqual({ hosts: expect.stringContaining(`${ip}\tweb-host\n`), shm: true });
      expect(svc.get(id)).toMatchObject({ state: 'ready', network: { ip }, files: { hostsPath: join(state, 'pods', id, 'files', 'hosts') } });
    });

    it('waits for the files being written when the pinning fails beside them, and leaves nothing', async () => {
      const svc = await daemon();
      attachingNetwork(() => undefined);
      const [mount, release] = [shm.mount.bind(shm), shm.release.bind(shm)];
      const events: string[] = [];
      // The mount is still being made when the pinning fails: the rollback must not begin before
      // it ends (it would remove the directory a write or the mount still needs, or miss the mount).
      shm.mount = async (path) => {
        await new Promise((r) => setTimeout(r, 50));
        await mount(path);
        events.push('mounted');
      };
      shm.release = async (path) => {
        events.push('released');
        await release(path);
      };
      pinns.failNext.set('pin', new InternalError('crib-pinns: unshare failed'));
      await expect(svc.run(podConfig('web'), '', live())).rejects.toThrow(/unshare failed/);
      expect(events).toEqual(['mounted', 'released']);
      await expectNothingLeft(svc);
    });

    it('gives the addresses back when the record cannot be written, and answers with the record\'s error', async () => {
      const svc = await daemon();
      attachingNetwork(() => undefined);
      // The records' dir replaced by a file: the record's write fails (ENOTDIR), the addresses are taken.
      await rm(join(root, 'pods'), { recursive: true });
      await writeFile(join(root, 'pods'), '');
      await expect(svc.run(podConfig('web'), '', live())).rejects.toThrow(/pods\/[0-9a-f]{64}\.json/);
      expect(net.calls).toContainEqual(expect.stringMatching(/^teardown /));
      expect([...net.attached.keys()]).toEqual([]);
      expect(pinns.calls).toEqual([]);
      expect(await podDirs()).toEqual([]);
    });
  });

  it('refuses a runtime handler that is not configured, before making anything', async () => {
    const svc = await daemon();
    await expect(svc.run(podConfig('web'), 'kata', live())).rejects.toThrow(InvalidArgumentError);
    await expect(svc.run(podConfig('web'), 'kata', live())).rejects.toThrow(/runtime handler "kata" is not configured \(have: crib, runc\)/);
    await expect(svc.run({ ...podConfig('web'), metadata: { name: 'web', namespace: '', uid: 'u', attempt: 0 } }, '', live()))
      .rejects.toThrow(/config\.metadata\.namespace must not be empty/);
    expect(pinns.calls).toEqual([]);
    expect(net.calls.filter((c) => c !== 'reconcile')).toEqual([]);
    await expectNothingLeft(svc);
    // A named handler that is configured is recorded.
    const id = await svc.run(podConfig('web'), 'runc', live());
    expect(svc.get(id).runtimeHandler).toBe('runc');
  });

  describe('a RunPodSandbox that fails part way leaves nothing behind and frees the name', () => {
    const failures: [string, (pinns: FakePinns, net: FakePodNetwork) => void, RegExp, Parameters<typeof podConfig>[1]][] = [
      ['pinning the namespaces', (p) => p.failNext.set('pin', new InternalError('crib-pinns: unshare failed')), /unshare failed/, {}],
      ['starting the pod init', (p) => p.failNext.set('startPodInit', new InternalError('crib-pinns: fork failed')), /fork failed/, { sharedPid: true }],
      ['setting up the network', (_p, n) => { n.failNextSetup = new InternalError('CNI ADD failed: no addresses left'); }, /no addresses left/, { sharedPid: true }],
      // The pod files come last: their failure must undo the network, the init and the pins.
      ['writing the pod files', () => undefined, /not a valid resolv\.conf value/, { sharedPid: true, dns: ['10.0.0.10', 'bad value'] }],
    ];
    for (const [step, breakIt, message, opts] of failures) {
      it(`when ${step} fails`, async () => {
        const svc = await daemon();
        breakIt(pinns, net);
        await expect(svc.run(podConfig('web', opts), '', live())).rejects.toThrow(message);
        await expectNothingLeft(svc);
        // Every step that had succeeded was undone: what was pinned was unpinned, what ran stopped.
        const pinned = pinns.calls.filter((c) => c.startsWith('pin ')).length;
        if (pinned && !step.startsWith('pinning')) expect(pinns.calls).toContainEqual(expect.stringMatching(/^unpin /));
        if (step === 'writing the pod files') {
          expect(pinns.calls).toContainEqual(expect.stringMatching(/^stopPodInit \d+$/));
          expect(net.calls).toContainEqual(expect.stringMatching(/^teardown /));
        }
        // The retry kubelet sends with the same name starts clean and succeeds.
        const id = await svc.run(podConfig('web', { ...opts, dns: undefined }), '', live());
        expect(svc.get(id).state).toBe('ready');
        expect(await recordFiles()).toEqual([`${id}.json`]);
      });
    }
  });

  it('a shared-PID pod records its init, containers join its PID namespace, and stop and remove end it', async () => {
    const svc = await daemon();
    const id = await svc.run(podConfig('pidpod', { sharedPid: true }), '', live());
    const rec = svc.get(id);
    expect(rec.podInitPid).toBeGreaterThan(1);
    expect([...pinns.podInits]).toEqual([rec.podInitPid]);
    // The init is started in the namespaces pinned for this pod.
    expect(pinns.calls).toContain(`startPodInit ${join(state, 'pods', id, 'ns')}`);
    expect(svc.pidNamespace(rec)).toBe(`/proc/${rec.podInitPid}/ns/pid`);
    // The pid is in the record on disk: a restarted daemon can still stop it.
    const restarted = await daemon();
    expect(restarted.get(id).podInitPid).toBe(rec.podInitPid);
    await restarted.stop(id);
    expect([...pinns.podInits]).toEqual([]);
    expect(pinns.calls.filter((c) => c === `stopPodInit ${rec.podInitPid}`)).toHaveLength(1);
    // A second stop does not signal the pid again (it may belong to someone else by now).
    await restarted.stop(id);
    expect(pinns.calls.filter((c) => c === `stopPodInit ${rec.podInitPid}`)).toHaveLength(1);
    await restarted.remove(id);
    await expectNothingLeft(restarted);
  });

  it('StopPodSandbox stops the containers and releases the network, once; stopping again or an unknown pod succeeds', async () => {
    const svc = await daemon();
    const id = await svc.run(podConfig('web'), '', live());
    const other = await svc.run(podConfig('other'), '', live());
    containers.byPod.set(id, ['c1', 'c2']);
    containers.byPod.set(other, ['c3']);
    await svc.stop(id.slice(0, 12)); // by unique prefix, as crictl does
    expect(containers.calls).toEqual(['stop c1', 'stop c2']);
    expect(svc.get(id).state).toBe('notready');
    expect(net.attached.has(id)).toBe(false);
    expect(net.attached.has(other)).toBe(true);
    expect(net.calls.filter((c) => c === `teardown ${id}`)).toHaveLength(1);
    // Its namespaces and /dev/shm are released, as containerd's stop does; the other pod's stay.
    // The files stay until RemovePodSandbox.
    expect(pinns.pinned.has(join(state, 'pods', id, 'ns'))).toBe(false);
    expect(shm.mounted.has(join(state, 'pods', id, 'files', 'shm'))).toBe(false);
    expect(existsSync(join(state, 'pods', id, 'files', 'hosts'))).toBe(true);
    expect(pinns.pinned.has(join(state, 'pods', other, 'ns'))).toBe(true);
    expect(shm.mounted.has(join(state, 'pods', other, 'files', 'shm'))).toBe(true);
    // The stopped state is on disk.
    expect((await daemon()).get(id).state).toBe('notready');

    await svc.stop(id);
    expect(net.calls.filter((c) => c === `teardown ${id}`)).toHaveLength(1);
    expect(svc.get(id).state).toBe('notready');
    await expect(svc.stop('f'.repeat(64))).resolves.toBeUndefined();
    await svc.remove(id);
    await expect(svc.stop(id)).resolves.toBeUndefined();
    expect(svc.get(other).state).toBe('ready');
  });

  it('StopPodSandbox writes its outcome\'s record beside the intent, in place only after the teardown; a failed teardown leaves the intent alone', async () => {
    const svc = await daemon();
    const id = await svc.run(podConfig('web'), '', live());
    const podsDir = join(root, 'pods');
    const teardown = net.teardown.bind(net);
    let during: { files: string[]; onDisk: string; temp: string } | undefined;
    net.teardown = async (podId: string) => {
      // The outcome is written beside the teardown (begun with the intent): it shows up under its
      // temp name while the teardown holds, the record in place still the intent.
      during = await vi.waitFor(async () => {
        const files = (await readdir(podsDir)).sort();
        const temp = files.find((f) => f.startsWith(`.tmp-${id}.json`));
        if (!temp) throw new Error('no temp file yet');
        return {
          files,
          onDisk: (JSON.parse(await readFile(join(podsDir, `${id}.json`), 'utf8')) as { state: string }).state,
          temp: (JSON.parse(await readFile(join(podsDir, temp), 'utf8')) as { state: string }).state,
        };
      }, { timeout: 5000, interval: 5 });
      return teardown(podId);
    };
    net.failNextTeardown = new InternalError('CNI DEL failed');
    await expect(svc.stop(id)).rejects.toThrow(/CNI DEL failed/);
    // The outcome was written under its temp name while the teardown ran, not in place.
    expect(during).toMatchObject({ onDisk: 'stopping', temp: 'notready' });
    expect(during!.files).toHaveLength(2);
    // Failed: the intent stays for the retry (reported NOTREADY), the outcome is gone.
    expect(svc.get(id).state).toBe('stopping');
    expect(await readdir(podsDir)).toEqual([`${id}.json`]);
    await svc.stop(id);
    expect(during).toMatchObject({ onDisk: 'stopping', temp: 'notready' });
    expect(svc.get(id).state).toBe('notready');
    expect(await readdir(podsDir)).toEqual([`${id}.json`]);
    expect((await daemon()).get(id).state).toBe('notready');
  });

  it('StopPodSandbox unmounts the namespaces and shm only once the notready record is in place; one that failed is left to the next stop or start-up', async () => {
    const svc = await daemon();
    const ids = [await svc.run(podConfig('web'), '', live()), await svc.run(podConfig('db'), '', live())];
    const nsDir = (id: string) => join(state, 'pods', id, 'ns');
    const shmPath = (id: string) => join(state, 'pods', id, 'files', 'shm');
    const seen: string[] = [];
    const unmount = pinns.unmount.bind(pinns);
    pinns.unmount = async (dir: string) => {
      // Read as the unmount begins: the record then is what a crash at this point leaves.
      const id = ids.find((i) => dir === nsDir(i))!;
      seen.push((JSON.parse(readFileSync(join(root, 'pods', `${id}.json`), 'utf8')) as { state: string }).state);
      await unmount(dir);
    };
    for (const id of ids) {
      pinns.failNext.set('unmount', new InternalError('umount2: EBUSY'));
      // The unmount failing does not fail the stop: the pod is stopped, its network gone.
      await svc.stop(id);
      expect(svc.get(id).state).toBe('notready');
      expect(net.attached.has(id)).toBe(false);
      expect(pinns.pinned.has(nsDir(id))).toBe(true);
    }
    expect(seen).toEqual(['notready', 'notready']);
    // Kubelet's next StopPodSandbox releases what is left...
    await svc.stop(ids[0]!);
    expect(seen).toEqual(['notready', 'notready', 'notready']);
    expect(pinns.pinned.has(nsDir(ids[0]!))).toBe(false);
    expect(shm.mounted.has(shmPath(ids[0]!))).toBe(false);
    // ...and so does a restart (what a crash between the record and the unmounts leaves).
    expect(pinns.pinned.has(nsDir(ids[1]!))).toBe(true);
    const restarted = await daemon();
    expect(pinns.pinned.has(nsDir(ids[1]!))).toBe(false);
    expect([...pinns.pinned.keys()]).toEqual([]);
    pinns.unmount = unmount;
    for (const id of ids) await restarted.remove(id);
    await restarted.removalsSettled();
    await expectNothingLeft(restarted);
  });

  it('RemovePodSandbox removes the containers and everything the pod holds; removing again succeeds', async () => {
    const svc = await daemon();
    const id = await svc.run(podConfig('web', { sharedPid: true }), '', live());
    containers.byPod.set(id, ['c1']);
    // Removed without a stop first: the network is released here.
    await svc.remove(id);
    expect(containers.calls).toEqual(['remove c1']);
    expect(net.calls).toContain(`teardown ${id}`);
    await expectNothingLeft(svc);
    expect(() => svc.get(id)).toThrow(/not found/);
    await expect(svc.remove(id)).resolves.toBeUndefined();
    // The name is free again, and a new daemon does not bring the pod back.
    const again = await svc.run(podConfig('web', { sharedPid: true }), '', live());
    expect(again).not.toBe(id);
    expect((await daemon()).find(id)).toBeUndefined();
  });

  it('RemovePodSandbox keeps the pod when its network will not let go, so the retry can release it', async () => {
    const svc = await daemon();
    const id = await svc.run(podConfig('web'), '', live());
    net.failNextTeardown = new InternalError('CNI DEL failed');
    await expect(svc.remove(id)).rejects.toThrow(/CNI DEL failed/);
    // The removal's intent stays (reported NOTREADY) for the retry, or a restart, to finish.
    expect(svc.get(id).state).toBe('removing');
    expect(await recordFiles()).toEqual([`${id}.json`]);
    expect(pinns.pinned.has(join(state, 'pods', id, 'ns'))).toBe(true);
    await svc.remove(id);
    await expectNothingLeft(svc);
  });

  it('RemovePodSandbox of a stopped pod writes no intent, unmounts before answering and deletes the dir from the trash', async () => {
    const svc = await daemon();
    const id = await svc.run(podConfig('web'), '', live());
    await svc.stop(id);
    const record = join(root, 'pods', `${id}.json`);
    const before = await readFile(record, 'utf8');
    // Held: deleting the dir's files (the pinned ones among them) in the background must not be
    // what the answer waits for.
    let gate!: () => void;
    const held = new Promise<void>((r) => (gate = r));
    const unpin = pinns.unpin.bind(pinns);
    pinns.unpin = async (dir: string) => {
      await held;
      await unpin(dir);
    };
    const writes: string[] = [];
    const watcher = (await import('node:fs')).watch(join(root, 'pods'), (_e, name) => writes.push(String(name)));
    try {
      await svc.remove(id);
    } finally {
      watcher.close();
    }
    expect(before).toContain('"notready"');
    // No temp file written next to the record: the removal went straight to deleting it.
    expect(writes.filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(await recordFiles()).toEqual([]);
    // The namespaces and shm, released by the stop, are unmounted again (idempotent) before the
    // answer; the files wait in the trash.
    expect(pinns.calls.filter((c) => c === `unmount ${join(state, 'pods', id, 'ns')}`)).toHaveLength(2);
    expect([...pinns.pinned.keys()]).toEqual([]);
    expect([...shm.mounted]).toEqual([]);
    expect(await podDirs()).toEqual([]);
    const [entry] = await readdir(join(state, 'pods-trash'));
    expect(existsSync(join(state, 'pods-trash', entry!, 'ns', 'net'))).toBe(true);
    gate();
    await svc.removalsSettled();
    expect(await readdir(join(state, 'pods-trash'))).toEqual([]);
    await expectNothingLeft(svc);
  });

  describe('names', () => {
    it('a second pod with the same name and attempt is refused; another attempt is a new pod', async () => {
      const svc = await daemon();
      const id = await svc.run(podConfig('web'), '', live());
      const err = await svc.run(podConfig('web'), '', live()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AlreadyExistsError);
      expect((err as Error).message).toContain(`"web_default_uid-web_0" is already in use by ${id}`);
      const next = await svc.run(podConfig('web', { attempt: 1 }), '', live());
      expect(next).not.toBe(id);
      expect(svc.list().map((r) => r.id).sort()).toEqual([id, next].sort());
    });

    it('names of pods on disk stay reserved after a restart', async () => {
      const id = await (await daemon()).run(podConfig('web'), '', live());
      const svc = await daemon();
      await expect(svc.run(podConfig('web'), '', live())).rejects.toThrow(new RegExp(`already in use by ${id}`));
    });

    it('a retry gets the pod whose caller gave up, and a retry during the create waits for it', async () => {
      const svc = await daemon();
      // kubelet's deadline passed while the pod was being made: the create finishes anyway...
      const gaveUp = new AbortController();
      gaveUp.abort();
      const orphan = await svc.run(podConfig('web'), '', gaveUp.signal);
      // ...and the retry with the same name is handed that pod instead of "name in use".
      await expect(svc.run(podConfig('web'), '', live())).resolves.toBe(orphan);
      expect(pinns.calls.filter((c) => c.startsWith('pin '))).toHaveLength(1);
      // Handed over once: after that the name is simply in use.
      await expect(svc.run(podConfig('web'), '', live())).rejects.toThrow(AlreadyExistsError);

      // Two requests with one name at once: one pod, both get its id.
      let open!: () => void;
      net.setupGate = new Promise((r) => (open = r));
      const first = svc.run(podConfig('db'), '', live());
      const second = svc.run(podConfig('db'), '', live());
      await new Promise((r) => setTimeout(r, 20));
      open();
      const [a, b] = await Promise.all([first, second]);
      expect(a).toBe(b);
      expect(net.calls.filter((c) => c.startsWith('setup '))).toHaveLength(2); // web and db
    });
  });

  describe('MCS levels (SELinux)', () => {
    // Every pod id hashes to these pairs, in this order: a forced collision.
    const PAIRS = ['s0:c1,c2', 's0:c3,c4', 's0:c5,c6'];
    const selinuxNode = () => daemon({ mcsLevels: new McsLevels(() => PAIRS) });
    const recorded = async (id: string) => (JSON.parse(await readFile(join(root, 'pods', `${id}.json`), 'utf8')) as { selinuxLevel?: string }).selinuxLevel;

    it('pods whose hashes collide get different levels, recorded before anything is made', async () => {
      const svc = await selinuxNode();
      const a = await svc.run(podConfig('a'), '', live());
      const b = await svc.run(podConfig('b'), '', live());
      expect(svc.get(a).selinuxLevel).toBe('s0:c1,c2');
      expect(svc.get(b).selinuxLevel).toBe('s0:c3,c4');
      expect(await recorded(b)).toBe('s0:c3,c4');
    });

    it('the levels of the pods on disk are held again after a restart, and a removed pod\'s level is freed', async () => {
      const first = await selinuxNode();
      const a = await first.run(podConfig('a'), '', live());
      const b = await first.run(podConfig('b'), '', live());
      await first.stop(b);
      const svc = await selinuxNode();
      expect(svc.get(a).selinuxLevel).toBe('s0:c1,c2');
      // A stopped pod still holds its level (its files are labelled with it) until it is removed.
      const c = await svc.run(podConfig('c'), '', live());
      expect(svc.get(c).selinuxLevel).toBe('s0:c5,c6');
      await svc.remove(a);
      const d = await svc.run(podConfig('d'), '', live());
      expect(svc.get(d).selinuxLevel).toBe('s0:c1,c2');
    });

    it('no free level: RESOURCE_EXHAUSTED and nothing made; a failed RunPodSandbox frees its level', async () => {
      const svc = await selinuxNode();
      for (const name of ['a', 'b', 'c']) await svc.run(podConfig(name), '', live());
      await expect(svc.run(podConfig('d'), '', live())).rejects.toThrow(ResourceExhaustedError);
      expect(await recordFiles()).toHaveLength(3);
      expect(await podDirs()).toHaveLength(3);
      await svc.remove(svc.list().find((r) => r.config.metadata!.name === 'b')!.id);
      pinns.failNext.set('pin', new InternalError('crib-pinns: unshare failed'));
      await expect(svc.run(podConfig('d'), '', live())).rejects.toThrow(/unshare failed/);
      const d = await svc.run(podConfig('d'), '', live());
      expect(svc.get(d).selinuxLevel).toBe('s0:c3,c4');
    });

    it('a pod whose selinuxOptions name a level has none of its own, and no pod is given that level', async () => {
      const svc = await selinuxNode();
      const config = podConfig('named');
      config.linux!.securityContext!.selinuxOptions = { user: '', role: '', type: '', level: 's0:c1,c2' };
      const named = await svc.run(config, '', live());
      expect(svc.get(named).selinuxLevel).toBeUndefined();
      const other = await svc.run(podConfig('other'), '', live());
      expect(svc.get(other).selinuxLevel).toBe('s0:c3,c4');
      // Held after a restart too.
      const again = await selinuxNode();
      const third = await again.run(podConfig('third'), '', live());
      expect(again.get(third).selinuxLevel).toBe('s0:c5,c6');
    });

    it('a node without SELinux gives pods no level', async () => {
      const svc = await daemon();
      const a = await svc.run(podConfig('a'), '', live());
      expect(svc.get(a).selinuxLevel).toBeUndefined();
      expect(await recorded(a)).toBeUndefined();
    });
  });

  describe('recovery', () => {
    it('rolls back a pod a crash left half-created, and its name is free again', async () => {
      const crashed = await daemon();
      let open!: () => void;
      net.setupGate = new Promise((r) => (open = r));
      const running = crashed.run(podConfig('web', { sharedPid: true }), '', live());
      while (!net.calls.some((c) => c.startsWith('setup '))) await new Promise((r) => setTimeout(r, 5));
      // The daemon "dies" here: the record says creating, namespaces are pinned, the init runs,
      // and the network setup (which a CNI plugin may have half done) never answered.
      const [file] = await recordFiles();
      const id = file!.replace(/\.json$/, '');
      expect(JSON.parse(await readFile(join(root, 'pods', file!), 'utf8'))).toMatchObject({ state: 'creating' });
      expect(crashed.list()).toEqual([]); // a creating pod is not listed...
      expect(crashed.allRecords().map((r) => r.id)).toEqual([id]); // ...but counts for the listed-size budget
      expect(pinns.podInits.size).toBe(1);

      net.setupGate = undefined;
      const svc = await daemon();
      expect(svc.find(id)).toBeUndefined();
      expect(net.calls).toContain(`teardown ${id}`); // the half-made network is released too
      expect(await recordFiles()).toEqual([]);
      expect(await podDirs()).toEqual([]);
      expect([...pinns.pinned.keys()]).toEqual([]);
      expect([...pinns.podInits]).toEqual([]);
      const fresh = await svc.run(podConfig('web'), '', live());
      expect(svc.get(fresh).state).toBe('ready');
      // Let the abandoned create of the "dead" daemon finish so the test ends clean.
      open();
      await running.catch(() => undefined);
    });

    it('unpins and deletes a pod dir a crash left without its record, and empties the trash', async () => {
      const crashed = await daemon();
      const id = await crashed.run(podConfig('web', { sharedPid: true }), '', live());
      // The daemon "dies" after the removal's record went, before the dir went to the trash.
      await rm(join(root, 'pods', `${id}.json`));
      await (await import('node:fs/promises')).mkdir(join(state, 'pods-trash', `${'f'.repeat(64)}-000000000000`, 'files'), { recursive: true });
      const svc = await daemon();
      expect(svc.find(id)).toBeUndefined();
      expect(await podDirs()).toEqual([]);
      expect(await readdir(join(state, 'pods-trash'))).toEqual([]);
      expect([...pinns.pinned.keys()]).toEqual([]);
      expect([...pinns.podInits]).toEqual([]);
      expect([...shm.mounted]).toEqual([]);
    });

    it('keeps ready and stopped pods, and releases network the node holds for pods that no longer exist', async () => {
      const first = await daemon();
      const ready = await first.run(podConfig('a'), '', live());
      const stopped = await first.run(podConfig('b'), '', live());
      await first.stop(stopped);
      // Network state a lost pod left behind (its record is gone).
      await net.setup('9'.repeat(64), '/nonexistent/ns/net');
      net.calls.length = 0;

      const svc = await daemon();
      expect(svc.get(ready).state).toBe('ready');
      expect(svc.get(stopped).state).toBe('notready');
      expect(net.calls).toEqual(['reconcile']);
      expect([...net.attached.keys()]).toEqual([ready]);
      expect(svc.networkedPods().map((r) => r.id)).toEqual([ready]);
      // The pod network cannot be swapped while a pod uses it.
      expect(() => svc.replaceNetwork(new FakePodNetwork())).toThrow(FailedPreconditionError);
      await svc.stop(ready);
      expect(() => svc.replaceNetwork(new FakePodNetwork())).not.toThrow();
    });
  });
});
