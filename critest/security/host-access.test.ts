// Host users against crib's root and state dirs (the containerd CVE-2021-41103 class). A live
// daemon with a pulled image and a running pod and container; an unprivileged host user
// (nobody, through setpriv) tries for real to run a setuid-root binary and a CAP_SETUID binary
// from an image layer, to run a setuid binary a root container planted in its own rootfs, to
// write into a layer's /tmp and the pod's /dev/shm, to list and traverse root and state, and to
// reach a container's attach and control sockets. Every attempt must fail with EACCES,
// while the same attempts as root work and copies of the same binaries in an open directory do
// make nobody root: the dirs' modes are what stops it. Then an install with the modes older
// versions made is restarted on and must be tightened, with the running container unharmed.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { removeMountTemplate, spawnDaemon, startDaemon, waitFor, type TestDaemon } from '../../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, pushImage } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';
import { buildEuidProbe, capSetuidEp } from './support/euid-probe.js';
import { NOBODY, asHostUser, asRoot, type Attempt, type Outcome } from './support/host-user.js';

const run = promisify(execFile);
const REFUSED: Outcome = { ok: false, code: 'EACCES' };
const ROOT = 'euid=0 setuid(0)=ok';

describe('host users cannot reach image or container files', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let work = '';
  let image = '';
  let podId = '';
  let containerId = '';
  let stopped = false;
  /** Where things are, as root sees them (the host user is told the same paths). */
  let at: { layer: string; rootfs: string; upper: string; shm: string; attach: string; ctl: string; log: string };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-host-access-'));
    // The daemon's dirs sit in world-searchable dirs, as in /var/lib and /run.
    await chmod(work, 0o755);
    const probe = await buildEuidProbe(work);
    registry = await startRegistry();
    const layer = await busyboxRootfsLayer({
      extra: [
        { type: 'file', path: 'euid-probe', content: probe, mode: 0o755 },
        { type: 'file', path: 'euid-suid', content: probe, mode: 0o4755, uid: 0, gid: 0 },
        { type: 'file', path: 'euid-cap', content: probe, mode: 0o755, xattrs: { 'security.capability': capSetuidEp() } },
      ],
    });
    await pushImage(registry, 'security/host-access', 'latest', buildImage({ layers: [layer], config: { Cmd: ['/bin/sh'] } }));
    image = `${registry.host}/security/host-access:latest`;
    const home = join(work, 'daemon');
    await run('mkdir', ['-m', '0755', home]);
    d = await startDaemon({ dir: home });
    await d.cri.image.PullImage({ image: { image } });
    const logDir = join(work, 'logs');
    const config = podConfigFactory('security', logDir)('host-access');
    podId = (await d.cri.runtime.RunPodSandbox({ config })).podSandboxId;
    containerId = (await d.cri.runtime.CreateContainer({
      podSandboxId: podId,
      config: {
        metadata: { name: 'planter' },
        image: { image },
        // Root in the container plants a setuid-root copy of the probe in its own rootfs.
        command: ['/bin/sh', '-c', 'cp /euid-probe /planted && chmod u+s /planted && exec sleep 1000'],
        logPath: 'planter.log',
      },
      sandboxConfig: config,
    })).containerId;
    await d.cri.runtime.StartContainer({ containerId });

    const snapshots = join(d.root, 'snapshots');
    const numbered = (await readdir(snapshots)).filter((n) => /^\d+$/.test(n));
    const layerDir = numbered.map((n) => join(snapshots, n, 'fs')).find((fs) => existsSync(join(fs, 'euid-suid')));
    const cdir = join(d.state, 'containers', containerId);
    at = {
      layer: layerDir!,
      rootfs: join(cdir, 'bundle', 'rootfs'),
      upper: join(snapshots, 'active', containerId, 'fs'),
      shm: join(d.state, 'pods', podId, 'files', 'shm'),
      attach: join(cdir, 'attach.sock'),
      ctl: join(cdir, 'ctl.sock'),
      log: (await d.cri.runtime.ContainerStatus({ containerId })).status.logPath,
    };
    expect(at.layer).toBeDefined();
    await waitFor('the planted setuid binary', async () => ((await stat(join(at.upper, 'planted'))).mode & 0o4000) !== 0);
  });

  afterAll(async () => {
    // A failure between stop and restart below would leave the container running: restart to
    // remove it properly.
    if (d && stopped) d = await startDaemon({ dir: d.dir });
    await d?.cleanup();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Every attack, by name; `tag` keeps file names apart between the runs. */
  const attacks = (tag: string): Record<string, Attempt> => ({
    'exec a setuid-root binary from a layer': { kind: 'exec', path: join(at.layer, 'euid-suid') },
    'exec a cap_setuid+ep binary from a layer': { kind: 'exec', path: join(at.layer, 'euid-cap') },
    'exec the setuid-root binary through the rootfs mount': { kind: 'exec', path: join(at.rootfs, 'euid-suid') },
    'exec the setuid binary the container planted (rootfs)': { kind: 'exec', path: join(at.rootfs, 'planted') },
    'exec the setuid binary the container planted (upper dir)': { kind: 'exec', path: join(at.upper, 'planted') },
    "write into a layer's /tmp": { kind: 'create', path: join(at.layer, 'tmp', `layer-by-${tag}`) },
    "write into the container's /tmp": { kind: 'create', path: join(at.rootfs, 'tmp', `container-by-${tag}`) },
    "write into the pod's /dev/shm": { kind: 'create', path: join(at.shm, `pod-by-${tag}`) },
    'list the root dir': { kind: 'list', path: d.root },
    'list the state dir': { kind: 'list', path: d.state },
    'traverse root to the snapshots': { kind: 'stat', path: join(d.root, 'snapshots') },
    'traverse state to the containers': { kind: 'stat', path: join(d.state, 'containers') },
    'find the attach socket': { kind: 'stat', path: at.attach },
    'connect to the attach socket': { kind: 'connect', path: at.attach },
    'find the control socket': { kind: 'stat', path: at.ctl },
    'connect to the control socket': { kind: 'connect', path: at.ctl },
    // kubelet's log dir keeps kubelet's modes; the log file crib writes is 0640.
    "write the container's log file": { kind: 'open-write', path: at.log },
  });

  const outcomes = async (who: 'nobody' | 'root', tag: string): Promise<Record<string, Outcome>> => {
    const named = attacks(tag);
    const got = await (who === 'nobody' ? asHostUser : asRoot)(Object.values(named));
    return Object.fromEntries(Object.keys(named).map((k, i) => [k, got[i]!]));
  };

  const allRefused = (got: Record<string, Outcome>) => Object.fromEntries(Object.keys(got).map((k) => [k, REFUSED]));

  it('keeps the file capability and setuid bit the image asked for (the attacks are real)', async () => {
    const { stdout } = await run('getcap', [join(at.layer, 'euid-cap')]);
    expect(stdout).toMatch(/euid-cap cap_setuid=ep/);
    expect((await stat(join(at.layer, 'euid-suid'))).mode & 0o7777).toBe(0o4755);
    // Copies (mode, owner, xattrs kept) in a directory anyone may enter make nobody root.
    const open = join(work, 'open');
    await run('mkdir', ['-m', '0755', open]);
    for (const f of [join(at.layer, 'euid-suid'), join(at.layer, 'euid-cap'), join(at.upper, 'planted')]) {
      await run('cp', ['-a', f, open]);
    }
    const copies = await asHostUser(['euid-suid', 'euid-cap', 'planted'].map((f): Attempt => ({ kind: 'exec', path: join(open, f) })));
    expect(copies).toEqual([{ ok: true, out: ROOT }, { ok: true, out: ROOT }, { ok: true, out: ROOT }]);
  });

  it('refuses every attempt of an unprivileged host user with EACCES', async () => {
    // Names are no secret: any user reads every mount, the container's layers included.
    const [mountinfo] = await asHostUser([{ kind: 'read', path: '/proc/self/mountinfo' }]);
    expect(mountinfo).toMatchObject({ ok: true, out: expect.stringContaining(`upperdir=${at.upper}`) });
    const got = await outcomes('nobody', 'nobody');
    expect(got).toEqual(allRefused(got));
  });

  it('lets root do all of it (the targets exist and work)', async () => {
    const got = await outcomes('root', 'root');
    for (const a of Object.values(attacks('root'))) if (a.kind === 'create') await rm(a.path); // the layer is shared
    for (const [name, o] of Object.entries(got)) {
      expect([name, o.ok]).toEqual([name, true]);
      if (name.startsWith('exec')) expect([name, o]).toEqual([name, { ok: true, out: ROOT }]);
    }
  });

  it('tightens an install left with the old 0711/0755 modes at start-up, running containers unharmed', async () => {
    await d.stop();
    stopped = true;
    const old: [string, number][] = [
      [d.root, 0o711], [join(d.root, 'snapshots'), 0o711], [join(d.root, 'snapshots', 'active'), 0o711],
      [join(at.layer, '..'), 0o755], [join(at.upper, '..'), 0o755],
      [d.state, 0o711], [join(d.state, 'containers'), 0o711], [join(d.state, 'containers', containerId), 0o711],
      [join(d.state, 'containers', containerId, 'bundle'), 0o711],
      [join(d.state, 'pods'), 0o711], [join(d.state, 'pods', podId), 0o711], [join(d.state, 'pods', podId, 'files'), 0o711],
    ];
    for (const [p, m] of old) await chmod(p, m);
    // The old layout is open: nobody runs the layer's setuid binary as root.
    expect(await asHostUser([attacks('old')['exec a setuid-root binary from a layer']!])).toEqual([{ ok: true, out: ROOT }]);

    d = await startDaemon({ dir: d.dir });
    stopped = false;
    for (const [p] of old) expect([p, (await stat(p)).mode & 0o7777]).toEqual([p, 0o700]);
    const warned = d.output().split('\n').filter((l) => l.includes('tightened a directory')).map((l) => JSON.parse(l));
    expect(warned.map((w) => [w.level, w.path, w.from, w.to]).sort()).toEqual(
      old.map(([p, m]) => [40, p, `0${m.toString(8)}`, '0700']).sort());

    const got = await outcomes('nobody', 'nobody-after-restart');
    expect(got).toEqual(allRefused(got));
    const st = (await d.cri.runtime.ContainerStatus({ containerId })).status;
    expect(st.state).toBe('CONTAINER_RUNNING');
    const ex = await d.cri.runtime.ExecSync({ containerId, cmd: ['/planted'], timeout: '10' });
    expect(ex.stdout.toString()).toBe(`${ROOT}\n`);
  });
});

describe('the CRI socket group', () => {
  let work = '';
  let stop: (() => Promise<unknown>) | undefined;

  afterAll(async () => {
    await stop?.();
    if (work) await removeMountTemplate(join(work, 'state'));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('reaches a socket in the state dir through 0710, and nothing else in it', async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-socket-group-'));
    await chmod(work, 0o755);
    const state = join(work, 'state');
    const socket = join(state, 'crib.sock');
    const config = join(work, 'config.toml');
    // nogroup is nobody's primary group; the CNI backend with no config touches no network.
    await writeFile(config, `root = "${join(work, 'root')}"\nstate = "${state}"\n` +
      `[grpc]\naddress = "unix://${socket}"\nsocket_group = ${NOBODY}\n` +
      `[network]\nplugin = "cni"\ncni_conf_dir = "${join(work, 'net.d')}"\n`);
    const daemon = spawnDaemon(['--config', config]);
    stop = async () => {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    };
    await waitFor('the CRI socket', async () => (await stat(socket)).isSocket(), 20_000);
    const st = await stat(state);
    expect([st.mode & 0o7777, st.gid]).toEqual([0o710, NOBODY]);
    // What the first pod makes (no pod runs here): state/pods/<id>, private.
    await run('mkdir', ['-m', '0700', join(state, 'pods'), join(state, 'pods', 'p1')]);
    const tries: Attempt[] = [
      { kind: 'connect', path: socket },
      { kind: 'list', path: state },
      { kind: 'stat', path: join(state, 'pods', 'p1') },
    ];
    // A member of the group connects, and can neither list state nor go further in.
    expect(await asHostUser(tries)).toEqual([{ ok: true }, REFUSED, REFUSED]);
    // Anyone else does not even reach the socket.
    expect(await asHostUser(tries, 4321)).toEqual([REFUSED, REFUSED, REFUSED]);
  });
});
