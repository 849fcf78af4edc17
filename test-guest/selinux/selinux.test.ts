// SELinux applied for real, in the guest booted with SELinux as its security module (guest.sh
// --lsm selinux: Debian's policy, permissive, the node's container contexts svirt_t and
// svirt_image_t — see guest-init.sh). Permissive means nothing is denied, but every label is
// real: the kernel checks each context against the loaded policy when it is set (an unknown type
// is refused), and reports the labels of processes and files as they are.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guest, type Guest } from '../support.js';

const PROCESS = 'system_u:system_r:svirt_t';
const FILE = 'system_u:object_r:svirt_image_t';

/** A file's SELinux context, as the kernel reports it. */
const fileLabel = (path: string) => execFileSync('stat', ['-c', '%C', path], { encoding: 'utf8' }).trim();
const processLabel = (pid: number) => readFileSync(`/proc/${pid}/attr/current`, 'utf8').replace(/\0/g, '').trim();

describe('SELinux labels of containers, their files and their volumes', () => {
  let g: Guest;
  let volume: string;

  const pidOf = async (containerId: string) => {
    const { info } = await g.cri.runtime.ContainerStatus({ containerId, verbose: true });
    return JSON.parse(info.info).pid as number;
  };
  /** The MCS level recorded for the pod (its record's selinuxLevel, in the verbose status). */
  const storedLevel = async (podSandboxId: string) => {
    const { info } = await g.cri.runtime.PodSandboxStatus({ podSandboxId, verbose: true });
    return JSON.parse(info.info).selinuxLevel as string | undefined;
  };

  beforeAll(async () => {
    expect(readFileSync('/sys/fs/selinux/enforce', 'utf8').trim(), 'the guest kernel must run SELinux, permissive').toBe('0');
    g = guest('selinux');
    // Under /tmp: the guest's ext4 scratch disk keeps security xattrs (the virtiofs root does not).
    volume = mkdtempSync('/tmp/crib-selinux-volume-');
  });
  afterAll(async () => {
    await g?.cleanup();
    if (volume) rmSync(volume, { recursive: true, force: true });
  });

  it('reports SELinux, not AppArmor, as the node\'s security module', async () => {
    const { info } = await g.cri.runtime.Status({ verbose: true });
    expect(JSON.parse(info.securityModules!)).toEqual({ apparmor: false, selinux: true });
  });

  it('labels the process, its execs, its rootfs and its tmpfs mounts with the level recorded for the pod', async () => {
    const pod = await g.runPod('labels');
    const level = (await storedLevel(pod.podSandboxId))!;
    expect(level).toMatch(/^s0:c\d+,c\d+$/);
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'c', 'echo hi > /written; exec sleep 3600');
    const pid = await pidOf(id);
    expect(processLabel(pid)).toBe(`${PROCESS}:${level}`);
    expect((await g.exec(id, 'cat /proc/self/attr/current')).stdout.replace(/\0/g, '').trim()).toBe(`${PROCESS}:${level}`);
    // The whole overlay rootfs: image files and what the container wrote (context= on the mount).
    expect(fileLabel(`/proc/${pid}/root/bin/sh`)).toBe(`${FILE}:${level}`);
    expect(fileLabel(`/proc/${pid}/root/written`)).toBe(`${FILE}:${level}`);
    // The runtime's tmpfs mounts (/dev) carry the mount label too, and the mqueue (which takes no
    // context= option) has its root labelled.
    expect(fileLabel(`/proc/${pid}/root/dev`)).toBe(`${FILE}:${level}`);
    expect(fileLabel(`/proc/${pid}/root/dev/mqueue`)).toBe(`${FILE}:${level}`);
    // A second container of the pod shares the pod's level (and so can share its volumes).
    const second = await g.runContainer(pod.podSandboxId, pod.config, 'second', 'exec sleep 3600');
    expect(processLabel(await pidOf(second))).toBe(`${PROCESS}:${level}`);

    // Another pod: another category pair, so neither pod's processes match the other's files.
    const other = await g.runPod('labels-other');
    const otherId = await g.runContainer(other.podSandboxId, other.config, 'c', 'exec sleep 3600');
    const otherLevel = (await storedLevel(other.podSandboxId))!;
    expect(otherLevel).toMatch(/^s0:c\d+,c\d+$/);
    expect(otherLevel).not.toBe(level);
    expect(processLabel(await pidOf(otherId))).toBe(`${PROCESS}:${otherLevel}`);
  });

  it('takes the pod\'s selinuxOptions, a container\'s over them, and relabels a volume that asks for it', async () => {
    const pod = await g.runPod('options', {
      linux: { securityContext: { selinuxOptions: { user: '', role: '', type: '', level: 's0:c7,c8' } } },
    });
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'c', 'exec sleep 3600', {
      mounts: [{ containerPath: '/data', hostPath: volume, selinuxRelabel: true }],
    });
    const pid = await pidOf(id);
    // A pod that names its level has none of its own recorded.
    expect(await storedLevel(pod.podSandboxId)).toBeUndefined();
    expect(processLabel(pid)).toBe(`${PROCESS}:s0:c7,c8`);
    expect(fileLabel(`/proc/${pid}/root/bin/sh`)).toBe(`${FILE}:s0:c7,c8`);
    expect(fileLabel(volume)).toBe(`${FILE}:s0:c7,c8`);

    const own = await g.runContainer(pod.podSandboxId, pod.config, 'own', 'exec sleep 3600', {
      linux: { securityContext: { selinuxOptions: { user: '', role: '', type: '', level: 's0:c3,c4' } } },
    });
    expect(processLabel(await pidOf(own))).toBe(`${PROCESS}:s0:c3,c4`);
  });

  it('refuses to relabel a system directory, leaving no container', async () => {
    const pod = await g.runPod('refuse');
    const before = fileLabel('/etc');
    const err = await g.cri.runtime.CreateContainer({
      podSandboxId: pod.podSandboxId, sandboxConfig: pod.config,
      config: g.containerConfig('c', 'exec sleep 3600', { mounts: [{ containerPath: '/host-etc', hostPath: '/etc', selinuxRelabel: true }] }),
    }).then(() => undefined, (e: { details?: string }) => e);
    expect(err?.details).toMatch(/\/etc/);
    expect(err?.details).toMatch(/relabel/i);
    expect(fileLabel('/etc')).toBe(before);
    expect((await g.cri.runtime.ListContainers({ filter: { podSandboxId: pod.podSandboxId } })).containers).toEqual([]);
  });

  it('refuses a label the loaded policy does not define, naming it, before anything is made', async () => {
    const pod = await g.runPod('unknown-type');
    // container_t: the type Debian's own lxc_contexts names, which its policy does not define.
    const err = await g.cri.runtime.CreateContainer({
      podSandboxId: pod.podSandboxId, sandboxConfig: pod.config,
      config: g.containerConfig('c', 'exec sleep 3600', {
        linux: { securityContext: { selinuxOptions: { user: '', role: '', type: 'container_t', level: '' } } },
      }),
    }).then(() => undefined, (e: { code?: number; details?: string }) => e);
    expect(err?.code).toBe(3); // INVALID_ARGUMENT
    expect(err?.details).toContain(`process label system_u:system_r:container_t:${await storedLevel(pod.podSandboxId)} is not defined`);
    expect((await g.cri.runtime.ListContainers({ filter: { podSandboxId: pod.podSandboxId } })).containers).toEqual([]);
  });
});
