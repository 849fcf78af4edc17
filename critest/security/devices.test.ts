// Devices a container gets: exactly what the CRI asked for, nothing the spec does not name.
// A loop device over a temp file stands in for a real device (reads and writes land in a file
// the test can check). Asked for "r" it is readable, and opening it for writing fails even for
// container root (the device cgroup answers EPERM; the node has no write bit for anyone else);
// "rw" is writable; only "rwm" lets the container mknod it. /dev/net/tun, which runtimes used to
// allow every container, can be neither opened (a node shipped in the image) nor mknod'ed in a
// default container, while a privileged one still opens it. The container's devices.list (cgroup
// v1, this host) is read back to check the exact rules.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, pushImage } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const run = promisify(execFile);
const DEVICES_V1 = '/sys/fs/cgroup/devices';
const onV1 = existsSync(join(DEVICES_V1, 'devices.list'));
const CONTENT = 'crib-device-test';
/** What every container is allowed: containerd's default device list (no tun/tap). */
const STANDARD = ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm'];

describe.skipIf(!onV1)('devices', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let work = '';
  let image = '';
  let loop = '';
  let loopMinor = 0;
  let backing = '';
  /** The loop device node's mode on the host. */
  let hostMode = 0;
  let podConfig: ReturnType<ReturnType<typeof podConfigFactory>>;
  let podId = '';
  let privilegedPodId = '';

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-devices-'));
    backing = join(work, 'backing');
    await writeFile(backing, Buffer.concat([Buffer.from(CONTENT), Buffer.alloc(64 * 1024 - CONTENT.length)]));
    loop = (await run('losetup', ['--find', '--show', backing])).stdout.trim();
    loopMinor = Number(/\/dev\/loop(\d+)$/.exec(loop)![1]);
    hostMode = (await stat(loop)).mode & 0o777;
    registry = await startRegistry();
    // The image ships a tun/tap node: whether it opens is the device cgroup's call.
    const layer = await busyboxRootfsLayer({ extra: [{ type: 'char', path: 'tun', major: 10, minor: 200, mode: 0o666 }] });
    await pushImage(registry, 'security/devices', 'latest', buildImage({ layers: [layer], config: { Cmd: ['/bin/sh'] } }));
    image = `${registry.host}/security/devices:latest`;
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image } });
    const pods = podConfigFactory('security', join(work, 'logs'));
    podConfig = pods('devices');
    podId = (await d.cri.runtime.RunPodSandbox({ config: podConfig })).podSandboxId;
    const privileged = pods('devices-privileged', { linux: { securityContext: { privileged: true } } });
    privilegedPodId = (await d.cri.runtime.RunPodSandbox({ config: privileged })).podSandboxId;
  });

  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    if (loop) await run('losetup', ['--detach', loop]).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A running container (sleep) in the pod; returns its id. */
  async function container(name: string, extra: Record<string, unknown> = {}, pod = podId): Promise<string> {
    const config = { metadata: { name }, image: { image }, command: ['sleep', '1000'], ...extra };
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId: pod, config });
    await d.cri.runtime.StartContainer({ containerId });
    return containerId;
  }

  /** Run a shell script in the container as its root; stdout and stderr together. */
  async function sh(containerId: string, script: string): Promise<string> {
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', `exec 2>&1; ${script}`], timeout: '20' });
    return r.stdout.toString();
  }

  /** The container's v1 devices cgroup rules, sorted. */
  async function devicesList(containerId: string): Promise<string[]> {
    const { info } = await d.cri.runtime.ContainerStatus({ containerId, verbose: true });
    const pid = JSON.parse(info.info).pid as number;
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /^\d+:devices:/.test(l))!;
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    return (await readFile(join(DEVICES_V1, path, 'devices.list'), 'utf8')).trim().split('\n').sort();
  }

  const device = (permissions: string) => ({ devices: [{ containerPath: '/dev/xdev', hostPath: loop, permissions }] });
  /** Open /dev/xdev for writing from the shell (no write happens unless it opens). */
  const OPEN_WRITE = "(exec 3>>/dev/xdev && echo opened-for-write)";
  const MKNOD = `mknod /dev/xdev2 b 7 ${loopMinor} && echo mknod-ok`;

  it('gives a device asked for "r" read access only: the cgroup refuses container root a write', async () => {
    const id = await container('dev-r', device('r'));
    expect(await sh(id, 'dd if=/dev/xdev bs=16 count=1 2>/dev/null')).toBe(CONTENT);
    expect(await sh(id, OPEN_WRITE)).toMatch(/can't create \/dev\/xdev: Operation not permitted/);
    // Root in the container passes any mode check; for everyone else the node has no write bit.
    expect(hostMode & 0o200).toBe(0o200);
    expect(await sh(id, 'id -u; stat -c %a /dev/xdev')).toBe(`0\n${(hostMode & ~0o222).toString(8)}\n`);
    expect(await sh(id, MKNOD)).toMatch(/Operation not permitted/);
    expect((await readFile(backing)).subarray(0, CONTENT.length).toString()).toBe(CONTENT);
    // The exact rules, read back from the container's devices cgroup.
    expect(await devicesList(id)).toEqual([...STANDARD, `b 7:${loopMinor} r`].sort());
  });

  it('gives "rw" read and write, without mknod', async () => {
    const id = await container('dev-rw', device('rw'));
    expect(await sh(id, 'stat -c %a /dev/xdev')).toBe(`${hostMode.toString(8)}\n`);
    expect(await sh(id, "printf WRITTEN | dd of=/dev/xdev bs=7 count=1 conv=notrunc,fsync 2>/dev/null && echo written")).toBe('written\n');
    await waitFor('the write in the backing file', async () => (await readFile(backing)).subarray(0, 7).toString() === 'WRITTEN');
    expect(await sh(id, MKNOD)).toMatch(/Operation not permitted/);
    // The exact rules, read back from the container's devices cgroup.
    expect(await devicesList(id)).toEqual([...STANDARD, `b 7:${loopMinor} rw`].sort());
  });

  it('lets "rwm" mknod the device', async () => {
    const id = await container('dev-rwm', device('rwm'));
    expect(await sh(id, MKNOD)).toBe('mknod-ok\n');
    expect(await sh(id, 'dd if=/dev/xdev2 bs=7 count=1 2>/dev/null')).toBe('WRITTEN');
    // The exact rules, read back from the container's devices cgroup.
    expect(await devicesList(id)).toEqual([...STANDARD, `b 7:${loopMinor} rwm`].sort());
  });

  it('allows a default container no tun/tap: the image\'s node does not open and mknod is refused', async () => {
    const id = await container('dev-default');
    expect(await sh(id, 'stat -c "%t:%T %a" /tun')).toBe('a:c8 666\n');
    expect(await sh(id, '(exec 3<>/tun && echo opened)')).toMatch(/can't create \/tun: Operation not permitted/);
    expect(await sh(id, 'mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && echo mknod-ok')).toMatch(/Operation not permitted/);
    // CAP_MKNOD is among the defaults: the refusal is the device cgroup's.
    const capEff = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(await sh(id, 'grep CapEff /proc/self/status'))![1]}`);
    const CAP_MKNOD = 27n;
    expect((capEff >> CAP_MKNOD) & 1n).toBe(1n);
    // The exact rules, read back from the container's devices cgroup.
    expect(await devicesList(id)).toEqual([...STANDARD].sort());
  });

  it('still lets a privileged container open /dev/net/tun', async () => {
    const id = await container('dev-privileged', { linux: { securityContext: { privileged: true } } }, privilegedPodId);
    expect(await sh(id, '(exec 3<>/dev/net/tun && echo opened)')).toBe('opened\n');
    expect(await sh(id, '(exec 3<>/tun && echo opened)')).toBe('opened\n');
    // The exact rules, read back from the container's devices cgroup.
    expect(await devicesList(id)).toEqual(['a *:* rwm']);
  });
});
