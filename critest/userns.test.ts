// User namespaces for pods (KEP-127, NamespaceOption.usernsOptions POD) end to end, as kubelet
// drives them: the pod gets one pinned user namespace with kubelet's maps, every container joins
// it, the rootfs is an overlay on idmapped layers, volumes carrying id mappings are idmapped.
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PORT_FORWARD_PROTOCOL_V1, REMOTE_COMMAND_V4 } from '../src/streaming/protocol/constants.js';
import { checkNodeTruth } from '../test-support/node-truth.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, layerFromEntries, pushImage } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';
import { openPortForwardStreams, openRemoteCommandStreams, readAll, spdyUpgrade } from '../test-support/spdy-client.js';

const RUNC_HANDLER = '[runtime.handlers.runc]\npath = "/usr/sbin/runc"\n';
// kubelet's shape: container 0..65535 on a 64 Ki block of host ids that is nobody else's.
const HOST_BASE = 1_638_400; // 25 * 65536: far from the test machine's real users
const MAPS = [{ containerId: 0, hostId: HOST_BASE, length: 65536 }];
const userns = (uids = MAPS, gids = MAPS, mode = 'POD') => ({ mode, uids, gids });

describe('user namespaces for pods', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  let work: string;
  let image: string;
  /** An image volume's image: files of uid 1234 and of root, mode 0600, in two layers. */
  let volImage: string;
  const podConfig = (name: string, extra: Record<string, unknown> = {}) => podConfigFactory('userns', logDir)(name, extra);
  const usernsPod = (name: string, nsExtra: Record<string, unknown> = {}) =>
    podConfig(name, { linux: { securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', usernsOptions: userns(), ...nsExtra } } } });
  const containerConfig = (name: string, script: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c', script],
    logPath: `${name}.log`,
    linux: { securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', usernsOptions: userns() } } },
    ...extra,
  });
  const sh = async (containerId: string, script: string) => {
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', script], timeout: '10' });
    return { code: r.exitCode as number, out: (r.stdout as Buffer).toString(), err: (r.stderr as Buffer).toString() };
  };
  const startPod = async (name: string, script: string, extra: Record<string, unknown> = {}) => {
    const config = usernsPod(name);
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig(name, script, extra), sandboxConfig: config });
    await d.cri.runtime.StartContainer({ containerId });
    const st = await d.cri.runtime.ContainerStatus({ containerId, verbose: true });
    const pid = JSON.parse(st.info.info).pid as number;
    return { podSandboxId, containerId, pid };
  };
  const hostIds = async (pid: number) => {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    return { uid: Number(/^Uid:\s+(\d+)/m.exec(s)![1]), gid: Number(/^Gid:\s+(\d+)/m.exec(s)![1]) };
  };
  const code = async (p: Promise<unknown>) => {
    try {
      await p;
      return status.OK;
    } catch (err) {
      return (err as { code: number }).code;
    }
  };

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-userns-logs-'));
    work = await mkdtemp(join(tmpdir(), 'crib-userns-'));
    registry = await startRegistry();
    // Two layers, so the overlay has more than one idmapped lower; /owned is uid/gid 1234.
    const base = await busyboxRootfsLayer();
    const top = await layerFromEntries([
      { type: 'file', path: 'owned', content: 'mine\n', mode: 0o600, uid: 1234, gid: 1234 },
      { type: 'dir', path: 'data', mode: 0o755, uid: 0, gid: 0 },
    ]);
    await pushImage(registry, 'library/userns', 'latest', buildImage({ layers: [base, top], config: { Cmd: ['/bin/sh'] } as never }));
    image = `${registry.host}/library/userns:latest`;
    const volBase = await layerFromEntries([
      { type: 'dir', path: 'data', mode: 0o755, uid: 0, gid: 0 },
      { type: 'file', path: 'data/mine', content: 'for 1234 only\n', mode: 0o600, uid: 1234, gid: 1234 },
      { type: 'file', path: 'data/run.sh', content: '#!/bin/sh\necho ran\n', mode: 0o755, uid: 1234, gid: 1234 },
    ]);
    const volTop = await layerFromEntries([
      { type: 'dir', path: 'data/sub', mode: 0o700, uid: 1234, gid: 1234 },
      { type: 'file', path: 'data/sub/deep', content: 'deep\n', mode: 0o600, uid: 1234, gid: 1234 },
      { type: 'file', path: 'data/roots', content: 'root only\n', mode: 0o600, uid: 0, gid: 0 },
    ]);
    await pushImage(registry, 'library/uservol', 'latest', buildImage({ layers: [volBase, volTop] }));
    volImage = `${registry.host}/library/uservol:latest`;
    d = await startDaemon({ toml: RUNC_HANDLER });
    await d.cri.image.PullImage({ image: { image } });
    await d.cri.image.PullImage({ image: { image: volImage } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('reports user namespace support for crib-runtime (as "" and under its name), not for runc 1.1', async () => {
    const handlers = (await d.cri.runtime.Status({})).runtimeHandlers as { name: string; features: { userNamespaces: boolean } }[];
    expect(handlers.map((h) => [h.name, h.features.userNamespaces])).toEqual([['', true], ['crib', true], ['runc', false]]);
  });

  it('runs a pod as the mapped root: id, uid_map, the host ids of its process and files, image ownership', async () => {
    // emptyDir-style: a world-writable host dir, bound without id mappings.
    const empty = join(work, 'empty');
    await mkdir(empty);
    await chmod(empty, 0o777);
    // A volume with kubelet's id mappings: idmapped, so host root's files are the pod root's.
    const mapped = join(work, 'mapped');
    await mkdir(mapped, { mode: 0o755 });
    await writeFile(join(mapped, 'by-1234'), 'x');
    await chown(join(mapped, 'by-1234'), 1234, 1234);
    const c = await startPod('basic', 'exec sleep 1000', {
      mounts: [
        { containerPath: '/empty', hostPath: empty },
        { containerPath: '/mapped', hostPath: mapped, uidMappings: MAPS, gidMappings: MAPS },
      ],
    });

    expect((await sh(c.containerId, 'id')).out.trim()).toBe('uid=0(root) gid=0(root) groups=0(root)');
    expect((await sh(c.containerId, 'cat /proc/self/uid_map /proc/self/gid_map')).out.trim().split('\n').map((l) => l.trim().split(/\s+/)))
      .toEqual([['0', String(HOST_BASE), '65536'], ['0', String(HOST_BASE), '65536']]);
    expect(await hostIds(c.pid)).toEqual({ uid: HOST_BASE, gid: HOST_BASE });

    // The image's files keep their ids as the pod sees them; the rootfs is the mapped root's.
    expect((await sh(c.containerId, 'stat -c %u:%g /owned /bin/busybox /')).out.trim().split('\n')).toEqual(['1234:1234', '0:0', '0:0']);
    const w = await sh(c.containerId, 'echo hi > /rootfs-file && echo more >> /etc/passwd && mkdir /data/sub && stat -c %u:%g /rootfs-file /etc/passwd');
    expect(w).toMatchObject({ code: 0, out: '0:0\n0:0\n' });
    const rootfs = join(d.state, 'containers', c.containerId, 'bundle', 'rootfs');
    expect((await stat(join(rootfs, 'rootfs-file'))).uid).toBe(HOST_BASE);
    expect((await stat(join(rootfs, 'owned'))).uid).toBe(HOST_BASE + 1234);

    // Written to the plain volume: the host sees the mapped uid.
    expect((await sh(c.containerId, 'echo x > /empty/f && stat -c %u /empty/f')).out.trim()).toBe('0');
    expect((await stat(join(empty, 'f'))).uid).toBe(HOST_BASE);
    // Written to the idmapped volume: stored with the pod's own ids; the host's 1234 is 1234.
    expect((await sh(c.containerId, 'echo y > /mapped/g && stat -c %u:%g /mapped/g /mapped/by-1234 /mapped')).out.trim().split('\n')).toEqual(['0:0', '1234:1234', '0:0']);
    expect((await stat(join(mapped, 'g'))).uid).toBe(0);

    // Capabilities are the mapped root's: full inside, none over the host.
    expect((await sh(c.containerId, 'cat /proc/self/status | grep CapEff')).out).toMatch(/CapEff:\s+00000000a80425fb/);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
  });

  it('mounts image volumes through the pod\'s mapping: the image\'s owners as in the image, read-only, noexec, the host unchanged', async () => {
    // The layer files on the host, as the image unpacked them: they must stay exactly so.
    const layerFiles = async () => {
      const out: string[] = [];
      const snapshots = join(d.root, 'snapshots');
      for (const n of await readdir(snapshots)) {
        if (!/^\d+$/.test(n)) continue;
        for (const rel of ['data/mine', 'data/roots', 'data/sub/deep', 'data/sub', 'data/run.sh']) {
          const st = await stat(join(snapshots, n, 'fs', rel)).catch(() => undefined);
          if (st) out.push(`${rel} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs} ${st.ctimeMs}`);
        }
      }
      return out.sort();
    };
    const before = await layerFiles();
    expect(before.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([
      'data/mine 1234:1234 600', 'data/roots 0:0 600', 'data/run.sh 1234:1234 755', 'data/sub 1234:1234 700', 'data/sub/deep 1234:1234 600',
    ]);
    // Kubelet may send the pod's own maps on the mount; they are honoured as they are.
    const c = await startPod('volumes', 'exec sleep 1000', {
      linux: {
        securityContext: {
          runAsUser: { value: 1234 }, runAsGroup: { value: 1234 },
          namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', usernsOptions: userns() },
        },
      },
      mounts: [
        { containerPath: '/vol', image: { image: volImage }, readonly: true },
        { containerPath: '/deep', image: { image: volImage }, imageSubPath: 'data/sub', readonly: true, uidMappings: MAPS, gidMappings: MAPS },
      ],
    });
    // Ownership as in the image, seen by the pod.
    expect((await sh(c.containerId, 'stat -c "%n %u:%g %a" /vol/data/mine /vol/data/roots /vol/data/sub /deep /deep/deep')).out.trim().split('\n')).toEqual([
      '/vol/data/mine 1234:1234 600', '/vol/data/roots 0:0 600', '/vol/data/sub 1234:1234 700', '/deep 1234:1234 700', '/deep/deep 1234:1234 600',
    ]);
    // The container runs as the mapped user 1234: it reads its own files (mode 0600) and not
    // root's, so the mapping is the image's, not everything squashed to one owner.
    expect((await sh(c.containerId, 'id -u; cat /vol/data/mine /deep/deep'))).toMatchObject({ code: 0, out: '1234\nfor 1234 only\ndeep\n' });
    const denied = await sh(c.containerId, 'cat /vol/data/roots');
    expect(denied.code).not.toBe(0);
    expect(denied.err).toMatch(/Permission denied/);
    // Read-only (where 1234's own permissions would let it write) and noexec.
    for (const target of ['/vol/data/mine', '/deep/new', '/deep/deep']) {
      const w = await sh(c.containerId, `echo x > ${target}`);
      expect(w.code, target).not.toBe(0);
      expect(w.err, target).toMatch(/Read-only file system/);
    }
    expect((await sh(c.containerId, '/vol/data/run.sh')).code).toBe(126);
    const info = (await sh(c.containerId, 'cat /proc/self/mountinfo')).out.split('\n');
    for (const path of ['/vol', '/deep']) {
      const line = info.find((l) => l.split(' ')[4] === path);
      expect(line!.split(' ')[5]!.split(','), path).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    }
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
    // The host's layers are as they were: no chown, no copy-up, nothing written.
    expect(await layerFiles()).toEqual(before);
  });

  it('gives the pod /proc, /sys, /dev, its hosts/resolv/hostname, logs, and namespaced sysctls', async () => {
    const config = usernsPod('kernelfs');
    (config as { linux: Record<string, unknown> }).linux.sysctls = { 'net.ipv4.ip_unprivileged_port_start': '80', 'kernel.shmmni': '1000' };
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('kernelfs', 'echo logged; exec sleep 1000'), sandboxConfig: config });
    await d.cri.runtime.StartContainer({ containerId });
    const r = await sh(containerId, [
      'grep -c " /proc proc " /proc/mounts', 'grep -c " /sys sysfs " /proc/mounts', 'ls /sys/class/net | tr "\\n" " "; echo',
      'echo hi > /dev/null && head -c 4 /dev/zero | wc -c', 'hostname', 'cat /etc/hostname', 'grep -c kernelfs /etc/hosts',
      'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni',
    ].join('; '));
    expect(r.out.split('\n')).toEqual(['1', '1', 'eth0 lo ', '4', 'kernelfs', 'kernelfs', '1', '80', '1000', '']);
    const st = (await d.cri.runtime.ContainerStatus({ containerId })).status;
    expect(await readFile(st.logPath, 'utf8')).toMatch(/stdout F logged/);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('streams exec and port-forward into a user-namespaced pod', async () => {
    const c = await startPod('stream', "mkdir -p /www && echo 'in the pod' > /www/index.html && exec httpd -f -p 8080 -h /www");
    // kubectl exec over SPDY.
    const { url } = await d.cri.runtime.Exec({ containerId: c.containerId, cmd: ['id', '-u'], stdout: true });
    const ex = await spdyUpgrade(url, [REMOTE_COMMAND_V4]);
    try {
      const s = await openRemoteCommandStreams(ex.connection, ex.protocol, { stdin: false, stdout: true, stderr: false, tty: false });
      expect((await readAll(s.stdout!)).toString()).toBe('0\n');
      await readAll(s.error);
    } finally {
      await ex.connection.close();
    }
    // kubectl port-forward: a connection opened in the pod's network namespace (owned by its
    // user namespace) by crib-pinns.
    const body = await waitFor('forwarded page', async () => {
      const pf = await d.cri.runtime.PortForward({ podSandboxId: c.podSandboxId, port: [8080] });
      const { connection } = await spdyUpgrade(pf.url, [PORT_FORWARD_PROTOCOL_V1]);
      try {
        const { data, error } = await openPortForwardStreams(connection, 8080, '1');
        const got = readAll(data);
        const err = readAll(error);
        data.end('GET / HTTP/1.0\r\n\r\n');
        const [b, e] = await Promise.all([got, err]);
        return e.length === 0 && b.toString().includes('in the pod') ? b.toString() : undefined;
      } finally {
        await connection.close();
      }
    });
    expect(body).toMatch(/200 OK/);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
  });

  it('shares one user namespace between the containers of a pod, also with a shared PID namespace', async () => {
    const config = usernsPod('shared', { pid: 'POD' });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const ids: string[] = [];
    for (const name of ['a', 'b']) {
      const cc = containerConfig(name, 'exec sleep 1000');
      cc.linux.securityContext.namespaceOptions.pid = 'POD';
      const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: cc, sandboxConfig: config });
      await d.cri.runtime.StartContainer({ containerId });
      ids.push(containerId);
    }
    const a = await sh(ids[0]!, 'readlink /proc/self/ns/user; ps -o pid,comm | grep -c sleep');
    const b = await sh(ids[1]!, 'readlink /proc/self/ns/user');
    expect(a.out.split('\n')[0]).toBe(b.out.trim());
    expect(a.out.split('\n')[1]).toBe('2');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('fails an idmapped volume on a filesystem without idmapped mounts, naming the mount', async () => {
    const config = usernsPod('nofs');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    // sysfs cannot be idmapped (no FS_ALLOW_IDMAP).
    const cc = containerConfig('nofs', 'exec sleep 1000', { mounts: [{ containerPath: '/k', hostPath: '/sys/kernel', uidMappings: MAPS, gidMappings: MAPS }] });
    // The runtime makes the mounts in its create, which is StartContainer's: the start fails,
    // and the container stays created with nothing of it running.
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: cc, sandboxConfig: config });
    const err = await d.cri.runtime.StartContainer({ containerId }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/mounts\[\d+\] \(\/k\): the filesystem of `\/sys\/kernel` .*does not support idmapped mounts/);
    expect((await d.cri.runtime.ContainerStatus({ containerId })).status.state).toBe('CONTAINER_CREATED');
    expect(await checkNodeTruth(d)).toEqual([]);
    await d.cri.runtime.RemoveContainer({ containerId });
    expect((await d.cri.runtime.ListContainers({ filter: { podSandboxId } })).containers).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('refuses what it cannot do, before anything is made', async () => {
    const bad = async (ns: Record<string, unknown>, handler = '') =>
      code(d.cri.runtime.RunPodSandbox({ config: usernsPod('bad', ns), runtimeHandler: handler }));
    expect(await bad({ usernsOptions: userns(MAPS, MAPS, 'CONTAINER') })).toBe(status.INVALID_ARGUMENT);
    expect(await bad({ usernsOptions: userns([{ containerId: 0, hostId: 0, length: 65536 }]) })).toBe(status.INVALID_ARGUMENT);
    expect(await bad({ usernsOptions: userns([...MAPS, { containerId: 70000, hostId: HOST_BASE + 10, length: 5 }]) })).toBe(status.INVALID_ARGUMENT);
    expect(await bad({ usernsOptions: userns([{ containerId: 1, hostId: HOST_BASE, length: 10 }]) })).toBe(status.INVALID_ARGUMENT);
    expect(await bad({ usernsOptions: userns([]) })).toBe(status.INVALID_ARGUMENT);
    expect(await bad({ network: 'NODE' })).toBe(status.INVALID_ARGUMENT);
    expect(await bad({}, 'runc')).toBe(status.INVALID_ARGUMENT);
    expect((await d.cri.runtime.ListPodSandbox({})).items.filter((p: { metadata: { name: string } }) => p.metadata.name === 'bad')).toEqual([]);
  });

  it('keeps a user-namespaced pod intact across a daemon restart', async () => {
    const c = await startPod('restart', 'exec sleep 1000');
    const before = (await sh(c.containerId, 'readlink /proc/self/ns/user')).out;
    await d.stop();
    d = await startDaemon({ dir: d.dir, toml: RUNC_HANDLER });
    expect((await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status.state).toBe('CONTAINER_RUNNING');
    expect((await sh(c.containerId, 'readlink /proc/self/ns/user')).out).toBe(before);
    // A new container joins the same pinned namespace.
    const config = (await d.cri.runtime.PodSandboxStatus({ podSandboxId: c.podSandboxId, verbose: false })).status;
    expect(config.state).toBe('SANDBOX_READY');
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId: c.podSandboxId, config: containerConfig('second', 'exec sleep 1000'), sandboxConfig: usernsPod('restart') });
    await d.cri.runtime.StartContainer({ containerId });
    expect((await sh(containerId, 'readlink /proc/self/ns/user; id -u')).out).toBe(`${before}0\n`);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
  });
});
