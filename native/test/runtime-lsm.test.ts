// Whether `exec` applies process.apparmorProfile / process.selinuxLabel is the host's decision:
// crib-runtime reads which LSMs are enabled from the host's /sys before anything of it enters the
// container, so a container that mounts over its own /sys cannot switch a profile off (or on).
// This host has neither AppArmor nor SELinux, so the two directions are:
//  - the host says absent, the container says present (a tmpfs on its /sys with the files the
//    check reads): the profile is still ignored with the host's warning, never attempted;
//  - the host says present (the runtime runs in a private mount namespace whose /sys/module has
//    apparmor's "enabled" file), the container says absent: the profile is attempted (and fails
//    here, with the profile named), never silently skipped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, testTag, type Bundle } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, deleteListed, leftovers, runProcess, waitFor } from './support/runtime-runner.js';

let rt: Runtime;
let work: string;
const bundles: Bundle[] = [];

beforeAll(async () => {
  rt = await Runtime.crib();
  work = await mkdtemp(join(tmpdir(), `${testTag}-lsm-`));
});

afterAll(async () => {
  const listed = await deleteListed(rt);
  for (const b of bundles) await b.remove();
  await rm(work, { recursive: true, force: true });
  await rm(rt.root, { recursive: true, force: true });
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** What the LSM checks read (src/process.c), faked by the container on tmpfs mounts of its own. */
const FAKE_LSM = 'mkdir -p /sys/module/apparmor/parameters /sys/fs/selinux && echo Y > /sys/module/apparmor/parameters/enabled'
  + ' && echo 1 > /sys/fs/selinux/enforce && echo faked > /tmp/ready; exec sleep 1000';

/** A created and started container whose process runs `script`; create's stdio goes to files
 * (the init keeps it: pipes would stay open). */
async function running(script: string, mounts: object[] = []): Promise<Bundle> {
  const b = await makeBundle('lsm', ['sh', '-c', script], (s) => { s.mounts.push(...mounts); });
  bundles.push(b);
  const errPath = join(work, `${b.id}.stderr`);
  const fd = openSync(errPath, 'w');
  const p = spawn(rt.bin, ['--root', rt.root, 'create', '--bundle', b.dir, b.id], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const code = await new Promise<number | null>((res) => p.on('exit', res));
  if (code !== 0) throw new Error(`create: ${readFileSync(errPath, 'utf8')}`);
  expect(await rt.exec(['start', b.id])).toMatchObject({ code: 0, stderr: '' });
  return b;
}

async function processFile(b: Bundle, args: string[]): Promise<string> {
  const path = join(b.dir, 'exec-process.json');
  await writeFile(path, JSON.stringify({
    args, env: ['PATH=/bin'], cwd: '/', apparmorProfile: 'crib-test-profile', selinuxLabel: 'system_u:system_r:crib_t:s0',
  }));
  return path;
}

describe('exec decides AppArmor and SELinux presence from the host, not the container', () => {
  it('host says absent, the container fakes present: the profile and label are ignored with the host\'s warning', async () => {
    const b = await running(FAKE_LSM, [
      { destination: '/sys/module', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'nodev', 'noexec'] },
      { destination: '/sys/fs', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'nodev', 'noexec'] },
    ]);
    const ready = join(b.rootfs, 'tmp', 'ready');
    await waitFor('the fake /sys', () => existsSync(ready) && readFileSync(ready, 'utf8') === 'faked\n');
    const p = await processFile(b, ['sh', '-c', 'cat /sys/module/apparmor/parameters/enabled /sys/fs/selinux/enforce']);
    const r = await rt.exec(['exec', '--process', p, b.id]);
    // The container sees its fakes...
    expect(r.stdout).toBe('Y\n1\n');
    // ...and exec went by the host.
    expect(r.stderr).toBe(
      'crib-runtime: warning: process.apparmorProfile `crib-test-profile` ignored: AppArmor is not enabled on this host\n'
      + 'warning: process.selinuxLabel `system_u:system_r:crib_t:s0` ignored: SELinux is not enabled on this host\n');
    expect(r.code).toBe(0);
    // The --apparmor and --process-label flags are the same fields.
    const flags = await rt.exec(['exec', '--apparmor', 'crib-flag-profile', '--process-label', 'x_u:x_r:x_t:s0', b.id, 'true']);
    expect(flags.stderr).toMatch(/process\.apparmorProfile `crib-flag-profile` ignored: AppArmor is not enabled on this host/);
    expect(flags.stderr).toMatch(/process\.selinuxLabel `x_u:x_r:x_t:s0` ignored: SELinux is not enabled on this host/);
    expect(flags.code).toBe(0);
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });

  it('host says present (as the runtime sees it), the container absent: the profile is applied, not skipped', async () => {
    const b = await running('exec sleep 1000');
    const p = await processFile(b, ['true']);
    // The runtime alone gets a /sys/module with AppArmor "enabled" and a securityfs with its
    // directory (the two things the check reads), in a mount namespace of its own; the container
    // keeps the real sysfs, which has no apparmor module.
    const script = 'mount -t tmpfs tmpfs /sys/module && mkdir -p /sys/module/apparmor/parameters'
      + ' && echo Y > /sys/module/apparmor/parameters/enabled'
      + ' && mount -t tmpfs tmpfs /sys/kernel/security && mkdir /sys/kernel/security/apparmor && exec "$@"';
    const r = await runProcess('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh',
      rt.bin, '--root', rt.root, 'exec', '--process', p, b.id]);
    expect(r.code).toBe(1);
    // Applying it is attempted and fails here (no AppArmor), naming the profile.
    expect(r.stderr).toMatch(/^crib-runtime: exec in `.*`: process\.apparmorProfile `crib-test-profile`: /);
    expect(r.stderr).not.toMatch(/ignored/);
    expect(await readFile(`/proc/self/mountinfo`, 'utf8')).not.toMatch(/ \/sys\/module /);
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });
});
