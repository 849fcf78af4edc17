// Mount and /proc races (issue 10), driven with crib-runtime directly. A racer process (the
// "second container" of a pod: test-support/path-racer.c) keeps swapping a path in a directory
// the container gets as a volume, while containers are created over and over. Each scenario
// checks every create: either it did what the spec asked, or it failed with a clear error naming
// what it refused; never did the racer's link take effect. It also counts the creates that met
// the racer's link, so a pass means the attack was really exercised. The CRI-level races
// (read-only volumes, masked paths) are in critest/security/mount-races.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildPathRacer, startHostRacer } from '../../test-support/path-racer.js';
import { makeBundle, testTag, uniqueId, type Bundle, type Spec } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, buildHelper, deleteListed, leftovers, waitFor } from './support/runtime-runner.js';

const CREATES = 30;

let rt: Runtime;
let work: string;
let racerBin: string;
let consoleBin: string;
const bundles: Bundle[] = [];

beforeAll(async () => {
  rt = await Runtime.crib();
  work = await mkdtemp(`/tmp/${testTag}-races-`);
  racerBin = buildPathRacer(work);
  consoleBin = buildHelper('runtime-console', work);
});

afterAll(async () => {
  const listed = await deleteListed(rt);
  for (const b of bundles) await b.remove();
  await rm(work, { recursive: true, force: true });
  await rm(rt.root, { recursive: true, force: true });
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** The host's mounts on /proc, /sys, /dev and under our work dir: a race that got out of the
 * container's mount namespace would show here. */
function hostMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => /^\/(proc|sys|dev)(\/|$)/.test(mp) || mp.startsWith(work))
    .sort();
}

/** `crib-runtime create`, its stderr through a file: the parked init keeps the runtime's stdio, so
 * a pipe would stay open until the container is deleted. */
async function create(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const errPath = join(work, 'create.stderr');
  const fd = openSync(errPath, 'w');
  const p = spawn(rt.bin, [...rt.prefix, '--root', rt.root, 'create', ...args], { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  const code = await new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
  return { code, stderr: readFileSync(errPath, 'utf8') };
}

type Verdict = 'ok' | 'landed';

interface Tally { ok: number; landed: number; refused: number; errors: string[]; swaps: number }

/**
 * Create a container from b CREATES times while racers swap each pair of names in dir. judge()
 * looks at each created (parked) container by its init's pid and says whether a racer's link
 * took effect; a failed create must match `refusal` (with none, no create may fail). Every
 * container is deleted right away. `untilSeen`: after CREATES, go on (up to 4 * CREATES) until
 * it holds of the tally, for a test that must see an outcome which a race makes rare.
 */
async function race(b: Bundle, dir: string, pairs: [string, string][], refusal: RegExp | undefined,
  judge: (pid: number) => Verdict, extraArgs: () => Promise<{ args: string[]; done: () => void }> = async () => ({ args: [], done: () => {} }),
  untilSeen?: (t: Tally) => boolean,
): Promise<Tally> {
  const before = hostMounts();
  const t: Tally = { ok: 0, landed: 0, refused: 0, errors: [], swaps: 0 };
  const racers = pairs.map(([a, other]) => startHostRacer(racerBin, dir, a, other));
  try {
    for (let i = 0; i < (untilSeen ? 4 * CREATES : CREATES); i++) {
      if (i >= CREATES && untilSeen?.(t)) break;
      const id = uniqueId('race');
      const extra = await extraArgs();
      const r = await create([...extra.args, '--bundle', b.dir, id]);
      if (r.code === 0) {
        const { pid } = await rt.state(id);
        t[judge(pid)]++;
        expect((await rt.exec(['delete', '--force', id])).code).toBe(0);
      } else if (refusal?.test(r.stderr)) {
        t.refused++;
      } else {
        t.errors.push(r.stderr.trim());
      }
      extra.done();
    }
  } finally {
    for (const r of racers) t.swaps += await r.stop();
  }
  expect(hostMounts()).toEqual(before);
  return t;
}

const bits = (caps: string[]): bigint => caps.reduce((m, c) => m | (1n << BigInt(CAP_NUMBERS[c]!)), 0n);
const CAP_NUMBERS: Record<string, number> = { CAP_KILL: 5, CAP_NET_BIND_SERVICE: 10, CAP_AUDIT_WRITE: 29 };

describe('/proc writes and reads go through crib-runtime\'s own procfs', () => {
  // The container's /proc/sys/kernel is a volume the racer rewrites: its `shmmni` flips between
  // a plain file and a link to /proc/1/comm (harmless to write, easy to see; a real attacker
  // would aim at /proc/sysrq-trigger or core_pattern), and its cap_last_cap lies ("0").
  let kernel: string;
  let b: Bundle;
  beforeAll(async () => {
    kernel = join(work, 'sysctl-kernel');
    await mkdir(kernel);
    await writeFile(join(kernel, 'shmmni'), '4096\n');
    await symlink('/proc/1/comm', join(kernel, 'shmmni-link'));
    await writeFile(join(kernel, 'cap_last_cap'), '0\n');
    b = await makeBundle('sysctl', ['true'], (s: Spec) => {
      s.linux.sysctl = { 'kernel.shmmni': '3333' };
      s.process.oomScoreAdj = 321;
      s.mounts.push({ destination: '/proc/sys/kernel', type: 'bind', source: kernel, options: ['rbind', 'rw'] });
    });
    bundles.push(b);
  });

  it('linux.sysctl reaches the container\'s kernel parameter, never a file the racer points it at', async () => {
    let redirected = 0;
    let missed = 0;
    const t = await race(b, kernel, [['shmmni', 'shmmni-link']], undefined, (pid) => {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const real = execFileSync('nsenter', [`--ipc=/proc/${pid}/ns/ipc`, 'cat', '/proc/sys/kernel/shmmni'], { encoding: 'utf8' }).trim();
      if (comm === '3333') redirected++;
      if (real !== '3333') missed++;
      return comm === '3333' || real !== '3333' ? 'landed' : 'ok';
    });
    console.log(`sysctl race: ${JSON.stringify({ ...t, redirected, missed })}`);
    expect(t.errors).toEqual([]);
    expect(t.swaps).toBeGreaterThan(1000);
    expect({ landed: t.landed, redirected, missed }).toEqual({ landed: 0, redirected: 0, missed: 0 });
    expect(t.ok).toBe(CREATES);
    // The racer's files are as it left them: nothing was written through its link or into them.
    expect(await readFile(join(kernel, 'shmmni'), 'utf8')).toBe('4096\n');
    expect(lstatSync(join(kernel, 'shmmni-link')).isSymbolicLink()).toBe(true);
  });

  it('the bounding set ignores a faked cap_last_cap; oomScoreAdj lands on the process', async () => {
    const id = uniqueId('race');
    expect(await create(['--bundle', b.dir, id])).toEqual({ code: 0, stderr: '' });
    const { pid } = await rt.state(id);
    const oom = readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim();
    const bnd = BigInt('0x' + /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    expect((await rt.exec(['delete', '--force', id])).code).toBe(0);
    // Read from the container's /proc, cap_last_cap "0" would have kept every capability but
    // CAP_CHOWN in the bounding set.
    expect(bnd.toString(16)).toBe(bits(b.spec.process.capabilities.bounding).toString(16));
    expect(oom).toBe('321');
  });

  // exec used to write oom_score_adj after joining the container's mount namespace, i.e. through
  // a /proc the running container controls. This one (it has CAP_SYS_ADMIN) hides its procfs
  // under a tmpfs whose self/oom_score_adj is a plain file.
  it('exec writes oomScoreAdj to the exec\'d process, not through the container\'s /proc', async () => {
    const caps = ['CAP_SYS_ADMIN', 'CAP_KILL'];
    const e = await makeBundle('execoom', ['sh', '-c', [
      'mkdir /realproc', 'mount -t proc proc /realproc', 'mount -t tmpfs tmpfs /proc', 'mkdir /proc/fake',
      'ln -s fake /proc/self', 'ln -s fake /proc/thread-self', ': > /proc/fake/oom_score_adj', 'touch /out/ready',
      'exec sleep 1000'].join(' && ')], (s: Spec) => {
      s.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] };
      s.process.oomScoreAdj = 222;
    });
    bundles.push(e);
    expect(await create(['--bundle', e.dir, e.id])).toEqual({ code: 0, stderr: '' });
    expect((await rt.exec(['start', e.id])).code).toBe(0);
    await waitFor('the container to hide its /proc', () => existsSync(join(e.out, 'ready')));
    const proc = join(e.dir, 'exec-process.json');
    await writeFile(proc, JSON.stringify({ ...e.spec.process, args: ['sh', '-c', 'echo fake=$(cat /proc/fake/oom_score_adj) real=$(cat /realproc/self/oom_score_adj)'] }));
    const r = await rt.exec(['exec', '--process', proc, e.id]);
    expect((await rt.exec(['delete', '--force', e.id])).code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('fake= real=222\n');
  });
});

describe('/proc is mounted only on a plain directory', () => {
  // The image's /proc is a link into a volume where the racer swaps two directories: procfs
  // would land on whichever was named `p`, and the masks and read-only /proc/sys on whichever
  // is named `p` later, leaving the real /proc/sys writable elsewhere in the container.
  it('a /proc that is a symlink is refused, whatever the racer does', async () => {
    const vol = join(work, 'proc-vol');
    await mkdir(join(vol, 'p'), { recursive: true });
    await mkdir(join(vol, 'q'));
    const b = await makeBundle('procsym', ['true'], (s: Spec) => {
      s.mounts.unshift({ destination: '/vol', type: 'bind', source: vol, options: ['rbind', 'rw'] });
    });
    bundles.push(b);
    await rm(join(b.rootfs, 'proc'), { recursive: true });
    await symlink('/vol/p', join(b.rootfs, 'proc'));
    await mkdir(join(b.rootfs, 'vol'));
    let sysWritable = 0;
    const t = await race(b, vol, [['p', 'q']], /mounts\[1\] \(\/proc\): `\/proc` in the rootfs goes through a symlink/, (pid) => {
      const mi = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' '));
      const procRoots = mi.filter((f) => f[f.indexOf('-') + 1] === 'proc' && f[3] === '/').map((f) => f[4]);
      const roSys = (mp: string) => mi.some((f) => f[4] === `${mp}/sys` && f[5]!.split(',').includes('ro'));
      if (procRoots.some((mp) => !roSys(mp!))) sysWritable++;
      return procRoots.length === 1 && procRoots[0] === '/proc' && roSys('/proc') ? 'ok' : 'landed';
    });
    console.log(`proc symlink race: ${JSON.stringify({ ...t, sysWritable })}`);
    expect(t.errors).toEqual([]);
    expect(t.landed).toBe(0);
    expect(t.refused).toBe(CREATES);
  });
});

describe('masked paths', () => {
  it('a masked path that the racer turns into a symlink is masked itself, not what it points to', async () => {
    const vol = join(work, 'mask-vol');
    await mkdir(vol);
    await writeFile(join(vol, 'secret'), 'secret\n');
    await symlink('/etc/passwd', join(vol, 'secret-link'));
    const b = await makeBundle('masklink', ['true'], (s: Spec) => {
      s.mounts.push({ destination: '/vol', type: 'bind', source: vol, options: ['rbind', 'rw'] });
      s.linux.maskedPaths.push('/vol/secret');
    });
    bundles.push(b);
    const t = await race(b, vol, [['secret', 'secret-link']], undefined, (pid) => {
      const passwd = statSync(`/proc/${pid}/root/etc/passwd`);
      return passwd.isFile() ? 'ok' : 'landed';
    });
    console.log(`masked symlink race: ${JSON.stringify(t)}`);
    expect(t.errors).toEqual([]);
    expect(t.landed).toBe(0);
    expect(t.ok).toBe(CREATES);
  });
});

describe('/dev/console', () => {
  // /dev is a volume (as a CRI mount on /dev makes it) where two racers work. One swaps two
  // directories, `pts` and `pts-decoy`: devpts gets mounted on one; the other holds links from
  // every pty number to /proc/sys/kernel/core_pattern (and a ptmx link to the real one). A
  // console bound from the path /dev/pts/<n> would expose the host's core_pattern as a writable
  // /dev/console (the CVE-2025-52565 class). The other racer swaps /dev/console itself with a
  // link to core_pattern: binding onto the path would mount the pty over what the link names.
  it('the pty is bound from its fd onto a plain /dev/console; links on either side are refused', async () => {
    const dev = join(work, 'console-dev');
    for (const d of ['pts', 'pts-decoy']) {
      await mkdir(join(dev, d), { recursive: true });
      await symlink('/dev/pts-decoy/ptmx', join(dev, d, 'ptmx'));
      for (let n = 0; n < 8; n++) await symlink('/proc/sys/kernel/core_pattern', join(dev, d, String(n)));
    }
    await symlink('pts/ptmx', join(dev, 'ptmx'));
    await writeFile(join(dev, 'console'), '');
    await symlink('/proc/sys/kernel/core_pattern', join(dev, 'console-link'));
    execFileSync('mknod', ['-m', '666', join(dev, 'null'), 'c', '1', '3']);
    const b = await makeBundle('console', ['true'], (s: Spec) => {
      s.process.terminal = true;
      s.mounts = s.mounts.map((m: Spec) => (m.destination === '/dev' ? { destination: '/dev', type: 'bind', source: dev, options: ['rbind', 'rw'] } : m));
    });
    bundles.push(b);
    const receiver = async () => {
      const sock = join(work, 'console.sock');
      await rm(sock, { force: true });
      const recv = spawn(consoleBin, [sock], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      recv.stdout.on('data', (d) => { out += d; });
      await waitFor('console receiver', () => out.includes('ready'));
      return { args: ['--console-socket', sock], done: () => { if (recv.exitCode === null) recv.kill('SIGKILL'); } };
    };
    // Judged on the container's mount table, not on paths the racers keep swapping: one pty
    // mount, on the console file (named either way at the moment), and core_pattern untouched.
    const judge = (pid: number): Verdict => {
      const mi = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
      const fstype = (f: string[]) => f[f.indexOf('-') + 1];
      const ptys = mi.filter((f) => fstype(f) === 'devpts' && f[3] !== '/');
      const corePattern = mi.some((f) => f[4] === '/proc/sys/kernel/core_pattern' || (fstype(f) === 'proc' && f[3] === '/sys/kernel/core_pattern'));
      return ptys.length === 1 && ['/dev/console', '/dev/console-link'].includes(ptys[0]![4]!) && !corePattern ? 'ok' : 'landed';
    };
    const t = await race(b, dev, [['pts', 'pts-decoy'], ['console', 'console-link']],
      /process\.terminal .*\/dev\/pts\/ptmx is a symlink|`\/dev\/console` in the rootfs goes through a symlink/, judge, receiver,
      // A create meets no link at either end only now and then (0-7 of 30 in CI runs).
      (tally) => tally.ok > 0 && tally.refused > 0);
    console.log(`console race: ${JSON.stringify(t)}`);
    expect(t.errors).toEqual([]);
    expect(t.landed).toBe(0);
    // Both ends were really met: creates that found a link were refused, the others worked.
    expect(t.refused).toBeGreaterThan(0);
    expect(t.ok).toBeGreaterThan(0);
  });
});
