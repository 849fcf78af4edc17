// crib-runtime against the real kernel: each test builds a busybox bundle, runs it with
// `crib-runtime run` and checks from inside the container with busybox commands.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBinaries } from '../../src/native-paths.js';
import { makeBundle, testTag, type Bundle, type Spec } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, buildHelper, cribRuntime, deleteListed, leftovers, runProcess, type RunResult } from './support/runtime-runner.js';

let rt: Runtime;
const bundles: Bundle[] = [];
const netns = `crib-test-${process.pid}`;

// As the daemon runs it: with the template mount namespace (native/src/mount-template.h), which
// every container here but the user-namespaced ones is built in.
beforeAll(async () => {
  rt = await Runtime.crib();
  expect(await rt.exec(['mount-template'])).toMatchObject({ code: 0, stderr: '' });
});

afterAll(async () => {
  try { execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' }); } catch { /* not made */ }
  const listed = await deleteListed(rt);
  for (const b of bundles) await b.remove();
  expect(await rt.exec(['mount-template', '--remove'])).toMatchObject({ code: 0, stderr: '' });
  await rm(rt.root, { recursive: true, force: true });
  // Leak check: `run` removed every container; nothing of ours mounted, no cgroups, no children.
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** Run `sh -c script` in a fresh container; the bundle is kept for inspection until afterAll. */
async function run(script: string, patch?: (s: Spec) => void): Promise<RunResult & { bundle: Bundle }> {
  const b = await makeBundle('rt', ['sh', '-c', script], patch);
  bundles.push(b);
  const r = await rt.exec(['run', '--bundle', b.dir, b.id]);
  return { ...r, bundle: b };
}

async function ok(script: string, patch?: (s: Spec) => void): Promise<string> {
  const r = await run(script, patch);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

const hostNs = (t: string) => readlinkSync(`/proc/self/ns/${t}`);

describe('namespaces', () => {
  it('creates pid, uts, ipc, mount, net and cgroup namespaces apart from the host', async () => {
    const out = await ok('for n in pid uts ipc mnt net cgroup; do echo $n $(readlink /proc/self/ns/$n); done; echo pid1 $$');
    const seen = Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ')));
    for (const n of ['pid', 'uts', 'ipc', 'mnt', 'net', 'cgroup']) {
      expect(seen[n]).toMatch(new RegExp(`^${n}:\\[\\d+\\]$`));
      expect(seen[n]).not.toBe(hostNs(n));
    }
    expect(seen.pid1).toBe('1');
  });

  it('time namespace with linux.timeOffsets', async () => {
    const out = await ok('cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time', (s) => {
      s.linux.namespaces.push({ type: 'time' });
      s.linux.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 } };
    });
    const [up, ns] = out.trim().split('\n');
    const hostUp = Number(readFileSync('/proc/uptime', 'utf8').split('.')[0]);
    expect(Number(up) - hostUp).toBeGreaterThanOrEqual(86400 * 365 - 60);
    expect(ns).not.toBe(hostNs('time'));
  });

  it('joins an existing network namespace by path', async () => {
    execFileSync('ip', ['netns', 'add', netns]);
    const want = execFileSync('ip', ['netns', 'exec', netns, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).trim();
    const out = await ok('readlink /proc/self/ns/net', (s) => {
      s.linux.namespaces = s.linux.namespaces.map((n: any) => (n.type === 'network' ? { type: 'network', path: `/run/netns/${netns}` } : n));
    });
    expect(out.trim()).toBe(want);
    expect(out.trim()).not.toBe(hostNs('net'));
  });

  it('user namespace: root inside, mapped ids on files outside', async () => {
    const base = 200000;
    const r = await run('id -u; id -g; touch /out/made; cat /proc/self/uid_map; ls -ln /dev/null', (s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: base, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: base, size: 65536 }];
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [uid, gid, map, devnull] = r.stdout.trim().split('\n');
    expect(uid).toBe('0');
    expect(gid).toBe('0');
    expect(map.trim().split(/\s+/)).toEqual(['0', String(base), '65536']);
    // /dev/null is the host's node bound in (mknod is refused in a user namespace).
    expect(devnull).toMatch(/^crw-rw-rw-\s+1 65534\s+65534\s+1,\s+3 /);
    const st = statSync(join(r.bundle.out, 'made'));
    expect(st.uid).toBe(base);
    expect(st.gid).toBe(base);
  });

  // Built in the template mount namespace (this file's runtime has one): the host's nodes are
  // copied before it is entered, each checked to be the device asked for.
  it('user namespace: linux.devices are the host\'s nodes, refused when not the device asked for', async () => {
    const maps = [{ containerID: 0, hostID: 200000, size: 65536 }];
    const userns = (s: Spec, minor: number) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = maps;
      s.linux.gidMappings = maps;
      s.linux.devices = [{ path: '/dev/kmsg', type: 'c', major: 1, minor }];
    };
    const r = await run('ls -ln /dev/kmsg', (s) => userns(s, 11));
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^cr.*\s1,\s+11 .*\/dev\/kmsg$/m);
    const wrong = await run('true', (s) => userns(s, 12));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/linux\.devices\[0\]: host `\/dev\/kmsg` is a character device 1:11, not the device asked for \(c 1:12\)/);
  });
});

describe('joining a pinned user namespace (a user-namespaced pod)', () => {
  const base = 1_835_008; // 28 * 65536
  const maps = [{ containerID: 0, hostID: base, size: 65536 }];
  let pin = '';
  let vol = '';
  beforeAll(async () => {
    pin = join(rt.root, 'pod-ns');
    vol = join(rt.root, 'vol');
    execFileSync(nativeBinaries.pinns, ['--dir', pin, '--net', '--ipc', '--uts', '--user', '--uid-map', `0:${base}:65536`, '--gid-map', `0:${base}:65536`]);
    await mkdir(vol, { mode: 0o700 });
    await writeFile(join(vol, 'f'), 'x');
    execFileSync('chown', ['1234:1234', join(vol, 'f')]);
  });
  afterAll(() => {
    execFileSync(nativeBinaries.pinns, ['--remove', pin]);
  });
  const joined = (s: Spec, uids = maps) => {
    s.linux.namespaces = s.linux.namespaces.filter((n: any) => !['network', 'ipc', 'uts'].includes(n.type));
    for (const [type, file] of [['user', 'user'], ['network', 'net'], ['ipc', 'ipc'], ['uts', 'uts']])
      s.linux.namespaces.push({ type, path: join(pin, file) });
    s.linux.uidMappings = uids;
    s.linux.gidMappings = maps;
    delete s.hostname;
  };

  it('runs as the mapped root, with idmapped binds of a 0700 host dir', async () => {
    const r = await run('id -u; readlink /proc/self/ns/user; stat -c %u:%g /tmp/f /tmp; touch /tmp/new', (s) => {
      joined(s);
      // An existing mount point: this rootfs is a plain root-owned dir, not idmapped.
      s.mounts.push({ destination: '/tmp', type: 'bind', source: vol, options: ['rbind', 'rw'], uidMappings: maps, gidMappings: maps });
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['0', `user:[${statSync(join(pin, 'user')).ino}]`, '1234:1234', '0:0']);
    expect(statSync(join(vol, 'new')).uid).toBe(0);
  });

  it('refuses spec maps that are not the joined namespace\'s', async () => {
    const r = await run('true', (s) => joined(s, [{ containerID: 0, hostID: base + 65536, size: 65536 }]));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/linux.uidMappings does not match the joined user namespace, which maps 0 1835008 65536/);
  });
});

// systemd makes every host mount shared, so a rootfs or a bind source on a node is a member of
// a peer group there; a copy of it made as host root (the user-namespace path clones the rootfs
// and every bind before it joins the container's namespaces) would be a peer too. This machine's
// mounts are private: these tests make a shared tmpfs of their own.
describe('on a host whose mounts are shared (as systemd makes them)', () => {
  const base = 2_424_832; // 37 * 65536
  const maps = [{ containerID: 0, hostID: base, size: 65536 }];
  let shared = '';
  beforeAll(async () => {
    shared = await mkdtemp(join(tmpdir(), `${testTag}-shared-`));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=755', 'tmpfs', shared]);
    execFileSync('mount', ['--make-shared', shared]);
  });
  afterAll(async () => {
    // Recursive: whatever a failed test let through is unmounted too.
    execFileSync('umount', ['-R', shared]);
    await rm(shared, { recursive: true });
  });
  const userns = (s: Spec) => {
    s.linux.namespaces.push({ type: 'user' });
    s.linux.uidMappings = maps;
    s.linux.gidMappings = maps;
  };
  const hostMountsUnder = (dir: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(`${dir}/`));
  /** A directory on the shared tmpfs, owned by the container's root. */
  const sharedDir = async (name: string) => {
    const dir = join(shared, name);
    await mkdir(dir);
    execFileSync('chown', [`${base}:${base}`, dir]);
    return dir;
  };

  it('a user-namespaced container on a shared rootfs starts, and none of its mounts reach the host', async () => {
    const b = await makeBundle('shared-root', ['sh', '-c', 'grep -q " /proc " /proc/self/mountinfo && echo ok'], userns, shared);
    const r = await rt.exec(['run', '--bundle', b.dir, b.id]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ok\n');
    // Its proc, sysfs, /dev and cgroup mounts stayed in its own namespace.
    expect(hostMountsUnder(b.dir)).toEqual([]);
  });

  // Both paths that clone binds as host root: a user namespace's, and the template mount
  // namespace's (this file's runtime has one; a container without a user namespace is built there).
  for (const [kind, patch] of [['user-namespaced', userns], ['template-built', (_s: Spec) => {}]] as const) {
    it(`what a ${kind} container mounts below a bind does not reach the bind's source`, async () => {
      const vol = await sharedDir(`vol-out-${kind}`);
      await mkdir(join(vol, 'sub'));
      const caps = ['CAP_SYS_ADMIN', 'CAP_KILL'];
      const b = await makeBundle('shared-bind-out', ['sh', '-c', 'mount -t tmpfs tmpfs /tmp/sub && echo mounted'], (s) => {
        patch(s);
        s.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] };
        // An existing mount point: the mapped root cannot make one in this root-owned rootfs.
        s.mounts.push({ destination: '/tmp', type: 'bind', source: vol, options: ['rbind', 'rw'] });
      });
      bundles.push(b);
      const r = await rt.exec(['run', '--bundle', b.dir, b.id]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('mounted\n');
      expect(hostMountsUnder(vol)).toEqual([]);
    });

    it(`what the host mounts below a bind still reaches a ${kind} container (rslave by default)`, async () => {
      const vol = await sharedDir(`vol-in-${kind}`);
      await mkdir(join(vol, 'sub'));
      const b = await makeBundle('shared-bind-in', ['sh', '-c', [
        'touch /out/ready',
        'for i in $(seq 100); do [ -e /tmp/sub/marker ] && break; sleep 0.1; done',
        'cat /tmp/sub/marker',
      ].join('; ')], (s) => {
        patch(s);
        s.mounts.push({ destination: '/tmp', type: 'bind', source: vol, options: ['rbind', 'rw'] });
      });
      bundles.push(b);
      const running = rt.exec(['run', '--bundle', b.dir, b.id]);
      for (let i = 0; i < 100 && !existsSync(join(b.out, 'ready')); i++) await new Promise((r) => setTimeout(r, 50));
      execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(vol, 'sub')]);
      await writeFile(join(vol, 'sub', 'marker'), 'from the host\n');
      const r = await running;
      execFileSync('umount', [join(vol, 'sub')]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('from the host\n');
    });
  }

  it('a template-built container on a shared rootfs leaves nothing in the host\'s mount table', async () => {
    const b = await makeBundle('shared-root-tmpl', ['sh', '-c', 'grep -q " /proc " /proc/self/mountinfo && echo ok'], undefined, shared);
    const r = await rt.exec(['run', '--bundle', b.dir, b.id]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    expect(hostMountsUnder(b.dir)).toEqual([]);
  });
});

describe('the template mount namespace', () => {
  let other: Runtime;
  let helpers = '';
  beforeAll(async () => {
    other = await Runtime.crib();
    helpers = await mkdtemp(join(tmpdir(), `${testTag}-helpers-`));
  });
  afterAll(async () => {
    const listed = await deleteListed(other);
    await other.exec(['mount-template', '--remove']);
    await rm(other.root, { recursive: true, force: true });
    await rm(helpers, { recursive: true, force: true });
    expect(listed).toEqual([]);
  });
  const templateDir = (r: Runtime) => join(r.root, '.mount-template');
  const mountLines = (dir: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir));

  it('is made once, pinned on a private bind of its dir, and removed leaving nothing', async () => {
    for (let i = 0; i < 2; i++) expect(await other.exec(['mount-template'])).toMatchObject({ code: 0, stderr: '' });
    const lines = mountLines(templateDir(other));
    expect(lines.map((l) => l.split(' ')[4])).toEqual([templateDir(other), join(templateDir(other), 'ns')]);
    // Private (no shared:N), or the kernel would refuse to pin a mount namespace there.
    expect(lines[0]).not.toMatch(/ shared:/);
    expect(lines[1]).toMatch(/ mnt:\[\d+\] .* - nsfs /);
    expect(await other.exec(['mount-template', '--remove'])).toMatchObject({ code: 0, stderr: '' });
    expect(mountLines(templateDir(other))).toEqual([]);
    expect(existsSync(templateDir(other))).toBe(false);
  });

  it('one of another layout is not used, and `mount-template` makes it anew', async () => {
    expect(await other.exec(['mount-template'])).toMatchObject({ code: 0, stderr: '' });
    const layout = join(templateDir(other), 'layout');
    expect(readFileSync(layout, 'utf8')).toBe('rootfs proc sys\n');
    await writeFile(layout, 'rootfs\n'); // as an older crib-runtime's template would be
    const b = await makeBundle('tmpl-layout', ['sh', '-c', 'echo ran']);
    bundles.push(b);
    const r = await other.exec(['run', '--bundle', b.dir, b.id]);
    expect(r.stdout).toBe('ran\n');
    expect(r.stderr).toMatch(/^crib-runtime: warning: the container's mount namespace is a copy of the host's: `.*\/ns` pins a template of another layout than this crib-runtime's/);
    expect(await other.exec(['mount-template'])).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(layout, 'utf8')).toBe('rootfs proc sys\n');
    // Pinned once: the old namespace was unpinned, not stacked under the new one.
    expect(mountLines(join(templateDir(other), 'ns'))).toHaveLength(1);
    await other.exec(['delete', '--force', b.id]);
    const again = await other.exec(['run', '--bundle', b.dir, b.id]);
    expect(again).toMatchObject({ code: 0, stdout: 'ran\n', stderr: '' });
  });

  it('a container made in it copies none of the host\'s mounts', async (ctx) => {
    const mountId = buildHelper('mount-id', helpers);
    // 200 more host mounts: a copy of the host's table would take 200 more mount ids.
    const many = join(helpers, 'many');
    await mkdir(many);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', many]);
    try {
      for (let i = 0; i < 200; i++) {
        await mkdir(join(many, String(i)));
        execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(many, String(i))]);
      }
      /** The unique id of a new host mount: ids are handed out in order, never reused. */
      let marks = 0;
      const mark = async () => {
        const dir = join(many, `mark-${marks++}`);
        await mkdir(dir);
        execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', dir]);
        const r = await runProcess(mountId, [dir]);
        if (r.code === 2) ctx.skip(); // no unique mount ids on this kernel (before 6.8)
        expect(r).toMatchObject({ code: 0, stderr: '' });
        return BigInt(r.stdout.trim());
      };
      /** Mounts made (in every namespace) while a container is created. */
      const mountsMade = async (b: Bundle, r: Runtime) => {
        const before = await mark();
        // Its init keeps create's stdio: nothing to wait for on pipes.
        execFileSync(cribRuntime, ['--root', r.root, 'create', '--bundle', b.dir, b.id], { stdio: 'ignore' });
        const after = await mark();
        await r.exec(['delete', '--force', b.id]);
        return Number(after - before - 1n);
      };
      await other.exec(['mount-template']);
      const inTemplate = await makeBundle('tmpl', ['true']);
      // A createContainer hook may expect the host's paths: such a container is built in a copy
      // of the host's table, as before the template.
      const copying = await makeBundle('tmpl-hook', ['true'], (s) => {
        s.hooks = { createContainer: [{ path: '/bin/true' }] };
      });
      // A user-namespaced one is built there too, from copies of the host's device nodes, /sys
      // and /proc taken before it enters the template.
      const maps = [{ containerID: 0, hostID: 2_490_368, size: 65536 }];
      const userns = await makeBundle('tmpl-userns', ['true'], (s) => {
        s.linux.namespaces.push({ type: 'user' });
        s.linux.uidMappings = maps;
        s.linux.gidMappings = maps;
      });
      bundles.push(inTemplate, copying, userns);
      const made = await mountsMade(inTemplate, other);
      const madeCopying = await mountsMade(copying, other);
      const madeUserns = await mountsMade(userns, other);
      expect(madeCopying).toBeGreaterThan(200);
      // Its own mounts only (rootfs, /proc, /dev, /sys, cgroups, binds, masks: about 30).
      expect(made).toBeLessThan(100);
      expect(madeUserns).toBeLessThan(100);
    } finally {
      execFileSync('umount', ['-R', many]);
    }
  });

  it('one that is there but unusable is reported, and the container made as without one', async () => {
    const broken = await Runtime.crib();
    try {
      await mkdir(templateDir(broken));
      await writeFile(join(templateDir(broken), 'ns'), ''); // a file nothing is mounted on
      const b = await makeBundle('tmpl-broken', ['sh', '-c', 'echo ran']);
      bundles.push(b);
      const r = await broken.exec(['run', '--bundle', b.dir, b.id]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('ran\n');
      expect(r.stderr).toMatch(/^crib-runtime: warning: the container's mount namespace is a copy of the host's: `.*\/ns` pins no namespace \(nothing is mounted on it\)\n$/);
    } finally {
      await rm(broken.root, { recursive: true, force: true });
    }
  });
});

describe('filesystem', () => {
  it('read-only root', async () => {
    const out = await ok('touch /x 2>&1 || echo refused; touch /tmp/x 2>&1 || echo tmp-refused', (s) => { s.root.readonly = true; });
    expect(out).toContain('Read-only file system');
    expect(out).toContain('refused');
    // /tmp is not a separate mount here, so it is read-only too.
    expect(out).toContain('tmp-refused');
  });

  it('linux.rootfsPropagation is the root\'s, and an unknown value is refused naming it', async () => {
    // The root line of the container's mountinfo: its optional fields tell shared from private.
    const rootLine = (out: string) => out.split('\n').find((l) => l.split(' ')[4] === '/')!;
    const shared = await ok('cat /proc/self/mountinfo', (s) => { s.linux.rootfsPropagation = 'rshared'; });
    expect(rootLine(shared)).toMatch(/ shared:\d+ /);
    // Shared within the container only: a new peer group, not the host rootfs mount's.
    const hostGroups = [...readFileSync('/proc/self/mountinfo', 'utf8').matchAll(/ shared:(\d+) /g)].map((m) => m[1]);
    expect(hostGroups).not.toContain(/ shared:(\d+) /.exec(rootLine(shared))![1]);
    const unbindable = await ok('cat /proc/self/mountinfo', (s) => { s.linux.rootfsPropagation = 'runbindable'; });
    expect(rootLine(unbindable)).toMatch(/ unbindable /);
    const priv = await ok('cat /proc/self/mountinfo', (s) => { s.linux.rootfsPropagation = 'rprivate'; });
    expect(rootLine(priv)).not.toMatch(/shared:|master:|unbindable/);
    const bad = await run('true', (s) => { s.linux.rootfsPropagation = 'sideways'; });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('linux.rootfsPropagation: unknown value `sideways`');
  });

  it('bind mounts: ro refuses writes, rw writes through, propagation is applied', async () => {
    const b = await makeBundle('bind', ['sh', '-c', 'cat /ro/file; (echo x > /ro/file) 2>&1 || echo ro-refused; echo hi > /out/w; grep -E " /ro | /sh " /proc/self/mountinfo']);
    bundles.push(b);
    const src = join(b.dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'file'), 'content\n');
    b.spec.mounts.push({ destination: '/ro', type: 'bind', source: src, options: ['bind', 'ro', 'nosuid', 'nodev', 'private'] });
    b.spec.mounts.push({ destination: '/sh', type: 'bind', source: src, options: ['rbind', 'rshared'] });
    await b.write();
    const r = await rt.exec(['run', '--bundle', b.dir, b.id]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('content');
    expect(r.stdout).toContain('ro-refused');
    const roLine = r.stdout.split('\n').find((l) => l.split(' ')[4] === '/ro')!;
    expect(roLine.split(' ')[5]).toMatch(/^ro,nosuid,nodev/);
    expect(roLine).not.toMatch(/shared:/);
    const shLine = r.stdout.split('\n').find((l) => l.split(' ')[4] === '/sh')!;
    expect(shLine).toMatch(/shared:\d+/);
    expect(await readFile(join(b.out, 'w'), 'utf8')).toBe('hi\n');
    expect(readFileSync(join(src, 'file'), 'utf8')).toBe('content\n');
  });

  it('rro makes a bind read-only down to the mounts below it', async () => {
    const b = await makeBundle('rro', ['sh', '-c', '(touch /rro/top) 2>&1; (touch /rro/sub/below) 2>&1; (touch /rb/sub/below) 2>&1 && echo rb-sub-writable']);
    bundles.push(b);
    // A host tree with a mount inside it, bound twice: recursively read-only, and plain ro.
    const tree = join(b.dir, 'tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(tree, 'sub')]);
    try {
      b.spec.mounts.push({ destination: '/rro', type: 'bind', source: tree, options: ['rbind', 'rro'] });
      b.spec.mounts.push({ destination: '/rb', type: 'bind', source: tree, options: ['rbind', 'ro'] });
      await b.write();
      const r = await rt.exec(['run', '--bundle', b.dir, b.id]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/touch: \/rro\/top: Read-only file system/);
      expect(r.stdout).toMatch(/touch: \/rro\/sub\/below: Read-only file system/);
      // plain "ro" only covers the top mount, as in runc
      expect(r.stdout).toContain('rb-sub-writable');
    } finally {
      execFileSync('umount', [join(tree, 'sub')]);
    }
  });

  it('tmpfs with options, and a relative bind source resolved against the bundle', async () => {
    const out = await ok('grep " /scratch " /proc/self/mountinfo; echo data > /scratch/f && cat /scratch/f', (s) => {
      s.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m', 'mode=700'] });
    });
    expect(out).toMatch(/ \/scratch .* - tmpfs tmpfs rw,.*size=1024k,mode=700/);
    expect(out).toContain('data');
  });

  it('maskedPaths are empty/unreadable, readonlyPaths are read-only', async () => {
    const out = await ok([
      'echo timers=$(wc -c < /proc/timer_list)',
      'echo firmware=$(ls -A /sys/firmware | wc -l)',
      '(echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo sys-writable || echo sys-ro',
      'grep " /proc/sys " /proc/self/mountinfo',
    ].join('; '));
    expect(readFileSync('/proc/timer_list', 'utf8').length).toBeGreaterThan(0);
    expect(out).toContain('timers=0');
    expect(out).toContain('firmware=0');
    expect(out).toContain('sys-ro');
    expect(out).toMatch(/ \/proc\/sys ro,/);
  });

  it('/dev has the standard nodes, symlinks, devpts and shm', async () => {
    const out = await ok('ls -l /dev /dev/pts; echo abc > /dev/null && head -c 4 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c; grep -E " /dev/(pts|shm) " /proc/self/mountinfo');
    for (const n of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) expect(out).toMatch(new RegExp(`^c.* ${n}$`, 'm'));
    expect(out).toMatch(/fd -> \/proc\/self\/fd$/m);
    expect(out).toMatch(/stdin -> \/proc\/self\/fd\/0$/m);
    expect(out).toMatch(/ptmx -> pts\/ptmx$/m);
    expect(out).toMatch(/^4$/m);
    expect(out).toMatch(/^8$/m);
    expect(out).toMatch(/ \/dev\/pts .* - devpts devpts rw,.*ptmxmode=666/);
    expect(out).toMatch(/ \/dev\/shm .* - tmpfs /);
  });

  it('a spec without /dev/pts and /dev/shm mounts still gets both', async () => {
    const out = await ok('grep -E " /dev/(pts|shm) " /proc/self/mountinfo; ls -l /dev/ptmx; stat -c %a /dev/shm', (s) => {
      s.mounts = s.mounts.filter((m: any) => m.destination !== '/dev/pts' && m.destination !== '/dev/shm');
    });
    expect(out).toMatch(/ \/dev\/pts rw,nosuid,noexec.* - devpts devpts rw,.*ptmxmode=666/);
    expect(out).toMatch(/ \/dev\/shm rw,nosuid,nodev,noexec.* - tmpfs shm rw,size=65536k/);
    expect(out).toMatch(/^1777$/m);
    expect(out).toMatch(/ptmx -> pts\/ptmx/);
  });

  it('linux.devices are created with their mode and owner', async () => {
    const out = await ok('ls -ln /dev/fuse-like', (s) => {
      s.linux.devices = [{ path: '/dev/fuse-like', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 7, gid: 8 }];
    });
    expect(out).toMatch(/^crw-r-----\s+1 7\s+8\s+1,\s+3 /);
  });

  it('cgroup mount shows the container\'s own cgroup, read-only', async () => {
    const out = await ok('ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs; touch /sys/fs/cgroup/pids/x 2>&1 || echo cg-ro');
    expect(out).toMatch(/^memory$/m);
    expect(out).toMatch(/^pids$/m);
    // Each of the host's v1 hierarchies (cgroup mount points right under /sys/fs/cgroup) and no
    // symlink (cpu -> cpu,cpuacct); a cgroup2 one only where the container has a cgroup in it.
    const mountPoints = (type: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .filter((l) => l.includes(` - ${type} `)).map((l) => l.split(' ')[4]!)
      .filter((m) => /^\/sys\/fs\/cgroup\/[^/]+$/.test(m)).map((m) => m.slice('/sys/fs/cgroup/'.length));
    const listed = out.split('\n').filter((l) => /^[a-z][a-z_=,0-9]*$/.test(l));
    const v2 = mountPoints('cgroup2');
    expect(listed.filter((l) => !v2.includes(l)).sort()).toEqual([...new Set(mountPoints('cgroup'))].sort());
    expect(out).toMatch(/^1$/m); // only our sh (pid 1 in the container) is in it
    expect(out).toContain('cg-ro');
  });
});

describe('process', () => {
  it('hostname and domainname', async () => {
    const out = await ok('hostname; cat /proc/sys/kernel/domainname', (s) => { s.hostname = 'box-1'; s.domainname = 'example.test'; });
    expect(out).toBe('box-1\nexample.test\n');
  });

  it('sysctl in a new network namespace', async () => {
    const out = await ok('cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_unprivileged_port_start', (s) => {
      s.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'net.ipv4.ip_unprivileged_port_start': '80' };
    });
    expect(out).toBe('1\n80\n');
    // The host is untouched.
    expect(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim()).not.toBe('80');
  });

  it('env, cwd, user, additionalGids and umask', async () => {
    const out = await ok('echo $FOO; pwd; id -u; id -g; id -G; touch /tmp/f; stat -c %a /tmp/f', (s) => {
      s.process.env.push('FOO=bar baz');
      s.process.cwd = '/tmp';
      s.process.user = { uid: 1234, gid: 2345, additionalGids: [3456, 4567], umask: 0o077 };
    });
    expect(out.split('\n')).toEqual(['bar baz', '/tmp', '1234', '2345', expect.stringMatching(/^2345 3456 4567$/), '600', '']);
  });

  it('rlimits', async () => {
    const out = await ok('ulimit -n; ulimit -Hn', (s) => { s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 321, hard: 654 }]; });
    expect(out).toBe('321\n654\n');
  });

  it('capabilities as asked, for root and non-root', async () => {
    const read = (out: string, k: string) => BigInt('0x' + out.match(new RegExp(`${k}:\\s*([0-9a-f]+)`))![1]);
    const out = await ok('grep Cap /proc/self/status', (s) => {
      s.process.capabilities = { bounding: ['CAP_NET_ADMIN', 'CAP_CHOWN', 'CAP_KILL'], effective: ['CAP_NET_ADMIN', 'CAP_CHOWN'],
        permitted: ['CAP_NET_ADMIN', 'CAP_CHOWN'], inheritable: [], ambient: [] };
    });
    expect(read(out, 'CapBnd')).toBe((1n << 12n) | (1n << 0n) | (1n << 5n));
    expect(read(out, 'CapEff')).toBe((1n << 12n) | 1n);
    expect(read(out, 'CapInh')).toBe(0n);
    const out2 = await ok('grep Cap /proc/self/status', (s) => {
      s.process.user = { uid: 1000, gid: 1000 };
      s.process.capabilities = { bounding: ['CAP_NET_BIND_SERVICE'], effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'],
        inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] };
    });
    expect(read(out2, 'CapEff')).toBe(1n << 10n);
    expect(read(out2, 'CapAmb')).toBe(1n << 10n);
    expect(read(out2, 'CapBnd')).toBe(1n << 10n);
  });

  it('noNewPrivileges on and off', async () => {
    expect(await ok('grep NoNewPrivs /proc/self/status')).toMatch(/NoNewPrivs:\s+1/);
    expect(await ok('grep NoNewPrivs /proc/self/status', (s) => { s.process.noNewPrivileges = false; })).toMatch(/NoNewPrivs:\s+0/);
  });

  it('oomScoreAdj: raising works; lowering below the current value warns and runs', async () => {
    expect(await ok('cat /proc/self/oom_score_adj', (s) => { s.process.oomScoreAdj = 500; })).toBe('500\n');
    const cur = Number(readFileSync('/proc/self/oom_score_adj', 'utf8'));
    const r = await run('cat /proc/self/oom_score_adj', (s) => { s.process.oomScoreAdj = -999; });
    expect(r.code).toBe(0);
    if (cur > -999 && !hasCapSysResource()) {
      expect(r.stderr).toMatch(/crib-runtime: warning: process.oomScoreAdj -999 refused/);
      expect(r.stdout.trim()).toBe(String(cur));
    } else {
      expect(r.stdout.trim()).toBe('-999');
    }
  });

  it('seccomp: a rule makes mkdir fail with its errnoRet, the rest is allowed', async () => {
    const out = await ok('mkdir /tmp/d 2>&1; echo rc=$?; touch /tmp/f && echo touched', (s) => {
      s.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
        syscalls: [
          { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
          { names: ['no_such_syscall_xyz'], action: 'SCMP_ACT_ERRNO' },
        ],
      };
    });
    expect(out).toMatch(/Permission denied/);
    expect(out).toContain('rc=1');
    expect(out).toContain('touched');
    const out2 = await ok('mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status', (s) => {
      s.process.noNewPrivileges = false;
      s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdirat', 'mkdir'], action: 'SCMP_ACT_ERRNO' }] };
    });
    expect(out2).toMatch(/Operation not permitted/);
    expect(out2).toMatch(/Seccomp:\s+2/);
  });
});

const unifiedIsCgroup2 = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
  .some((l) => l.split(' ')[4] === '/sys/fs/cgroup/unified' && l.includes(' - cgroup2 '));

describe.skipIf(!unifiedIsCgroup2)('cgroup v2', () => {
  it('on a cgroup2 hierarchy: the cgroup mount is cgroup2, scoped by the cgroup namespace', async () => {
    const b = await makeBundle('v2', ['sh', '-c', 'cat /proc/self/cgroup | grep "^0::"; grep " /sys/fs/cgroup " /proc/self/mountinfo; cat /sys/fs/cgroup/cgroup.procs']);
    bundles.push(b);
    b.spec.linux.resources = {};
    await b.write();
    // The hybrid host's (controller-less) cgroup2 mount stands in for a v2 host.
    const r = await rt.exec(['run', '--bundle', b.dir, b.id], {
      env: { ...process.env, CRIB_CGROUP_ROOT: '/sys/fs/cgroup/unified', CRIB_CGROUP_MODE: 'v2' },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('0::/');
    expect(lines[1]).toMatch(/ \/sys\/fs\/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 /);
    expect(lines.slice(2)).toEqual(['1']);
  });
});

describe('host features', () => {
  it('apparmorProfile and selinuxLabel are ignored with a warning on a host without them', async () => {
    const r = await run('echo ran', (s) => { s.process.apparmorProfile = 'crib-default'; s.process.selinuxLabel = 'system_u:system_r:container_t:s0'; });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ran\n');
    if (!existsSync('/sys/module/apparmor')) expect(r.stderr).toMatch(/crib-runtime: warning: process.apparmorProfile `crib-default` ignored/);
    if (!existsSync('/sys/fs/selinux')) expect(r.stderr).toMatch(/warning: process.selinuxLabel `system_u:system_r:container_t:s0` ignored/);
  });

  it('--no-pivot moves the rootfs onto / and chroots', async () => {
    const b = await makeBundle('nopivot', ['sh', '-c', 'ls /bin/busybox; readlink /proc/self/ns/mnt']);
    bundles.push(b);
    const r = await rt.exec(['run', '--no-pivot', '--bundle', b.dir, b.id]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('/bin/busybox');
    expect(r.stdout.split('\n')[1]).not.toBe(hostNs('mnt'));
  });

  it('fds: leaked ones are closed, --preserve-fds passes 3..3+n-1', async () => {
    const b = await makeBundle('fds', ['sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "; echo via-fd3 >&3']);
    bundles.push(b);
    const runWith = (extra: string[]) => new Promise<{ code: number | null; out: string; fd3: string; err: string }>((resolve) => {
      const p = spawn(rt.bin, ['--root', rt.root, 'run', ...extra, '--bundle', b.dir, `${b.id}-${extra.length}`], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
      let out = '', fd3 = '', err = '';
      p.stdout!.on('data', (d) => { out += d; });
      p.stderr!.on('data', (d) => { err += d; });
      (p.stdio[3] as NodeJS.ReadableStream).on('data', (d) => { fd3 += d; });
      p.on('close', (code) => resolve({ code, out, fd3, err }));
    });
    const leaked = await runWith([]);
    // ls's own directory fd is the only one above 2; the pipe on fd 3 did not get in.
    expect(leaked.out).toBe('0 1 2 3 ');
    expect(leaked.err).toMatch(/3: Bad file descriptor/);
    expect(leaked.fd3).toBe('');
    const kept = await runWith(['--preserve-fds', '1']);
    expect(kept.err).toBe('');
    expect(kept.out).toBe('0 1 2 3 4 ');
    expect(kept.fd3).toBe('via-fd3\n');
  });

  it('delete --force clears a state dir that a crashed create left without state.json', async () => {
    const dir = join(rt.root, 'half-made');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'exec.fifo'), '');
    expect((await rt.exec(['delete', 'half-made'])).stderr).toMatch(/container `half-made` does not exist/);
    const r = await rt.exec(['delete', '--force', 'half-made']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  it('run returns the exit code of the process and removes the container', async () => {
    const r = await run('exit 42');
    expect(r.code).toBe(42);
    expect((await rt.exec(['state', r.bundle.id])).stderr).toMatch(/does not exist/);
  });
});

function hasCapSysResource(): boolean {
  const eff = BigInt('0x' + readFileSync('/proc/self/status', 'utf8').match(/CapEff:\s*([0-9a-f]+)/)![1]);
  return (eff & (1n << 24n)) !== 0n;
}
