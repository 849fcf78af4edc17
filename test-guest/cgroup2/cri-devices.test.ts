// Device access on cgroup v2, where no devices.allow/deny files exist: crib-runtime attaches a
// BPF_PROG_TYPE_CGROUP_DEVICE program to the container's cgroup, and the kernel asks it on every
// open and mknod. The container has CAP_MKNOD (containerd's default set), so a refused mknod
// or open is the program's verdict, not a missing capability.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guest, type Guest } from '../support.js';

const run = promisify(execFile);
const major = (rdev: number) => Math.floor(rdev / 256) & 0xfff;
const minor = (rdev: number) => rdev & 0xff;

describe('device cgroup through BPF', () => {
  let g: Guest;
  let pod: { podSandboxId: string; config: Record<string, any> };
  let loopDir = '';
  let loop = '';

  beforeAll(async () => {
    g = guest('devices');
    pod = await g.runPod('devices');
    // A disk of our own to hand to a container: a loop device over a 1 MiB file of 'x'.
    loopDir = mkdtempSync(join(tmpdir(), 'crib-loop-'));
    await run('sh', ['-c', `head -c 1048576 /dev/zero | tr '\\0' x > ${loopDir}/disk`]);
    loop = (await run('losetup', ['--find', '--show', `${loopDir}/disk`])).stdout.trim();
  });
  afterAll(async () => {
    await g?.cleanup();
    if (loop) await run('losetup', ['--detach', loop]);
    rmSync(loopDir, { recursive: true, force: true });
  });

  it('allows the standard devices and refuses a disk it was not given', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'std', 'exec sleep 1000');
    const ok = await g.exec(id, 'echo hi > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c');
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('4\n4\n');
    // mknod of an allowed device works (CAP_MKNOD is there) ...
    expect((await g.exec(id, 'mknod /tmp/mynull c 1 3 && echo hi > /tmp/mynull && echo made')).stdout).toBe('made\n');
    // ... and of the guest's disk (virtio-blk /dev/vda) the program refuses it.
    const vda = statSync('/dev/vda').rdev;
    const disk = await g.exec(id, `mknod /tmp/vda b ${major(vda)} ${minor(vda)}; echo "rc $?"`);
    expect(disk.stdout).toBe('rc 1\n');
    expect(disk.stderr).toContain('Operation not permitted');
  });

  it('makes a CRI device with permissions "r" readable and not writable', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'ro', 'exec sleep 1000', {
      devices: [{ containerPath: '/dev/xvdb', hostPath: loop, permissions: 'r' }],
    });
    const read = await g.exec(id, 'head -c 4 /dev/xvdb');
    expect(read.stdout).toBe('xxxx');
    const write = await g.exec(id, 'echo y > /dev/xvdb; echo "rc $?"');
    expect(write.stdout).toBe('rc 1\n');
    expect(write.stderr).toContain('Operation not permitted');
    // Nor may it make a second node of it: "r" has no "m".
    const rdev = statSync(loop).rdev;
    const mk = await g.exec(id, `mknod /tmp/again b ${major(rdev)} ${minor(rdev)}; echo "rc $?"`);
    expect(mk.stdout).toBe('rc 1\n');
    // The disk is unchanged.
    expect((await run('head', ['-c', '4', loop])).stdout).toBe('xxxx');
  });

  it('makes a CRI device with permissions "rw" writable', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'rw', 'exec sleep 1000', {
      devices: [{ containerPath: '/dev/xvdc', hostPath: loop, permissions: 'rw' }],
    });
    const write = await g.exec(id, 'printf yy | dd of=/dev/xvdc conv=notrunc 2>/dev/null && sync && echo written');
    expect(write.stdout).toBe('written\n');
    expect((await run('sh', ['-c', `head -c 4 ${loop}`])).stdout).toBe('yyxx');
  });
});
