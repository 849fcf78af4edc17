// Differential test: the same bundles under crib-runtime, Debian's runc and (when present)
// crun must give the same observable results inside the container.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { makeBundle, type Bundle, type Spec } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, hasBinary, leftovers } from './support/runtime-runner.js';

const haveRunc = hasBinary('runc');
const haveCrun = hasBinary('crun') && hasBinary('unshare');
if (!haveRunc) console.warn('runtime-diff: skipped: runc is not installed (apt-get install runc)');

const runtimes: Runtime[] = [];
const bundles: Bundle[] = [];

beforeAll(async () => {
  if (!haveRunc) return;
  runtimes.push(await Runtime.crib(), await Runtime.runc());
  if (haveCrun) runtimes.push(await Runtime.crun());
});

afterAll(async () => {
  for (const b of bundles) await b.remove();
  for (const r of runtimes) await rm(r.root, { recursive: true, force: true });
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** What the container sees, with the parts that legitimately differ per run masked out. */
const probe = [
  'echo "exit-check"',
  'hostname; cat /proc/sys/kernel/domainname',
  'id; umask; pwd; echo "$FOO"',
  'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status',
  'ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj',
  'ls -ln /dev | grep -v "^total" | awk \'{print $1, $3, $4, $5, $6, $NF}\'',
  // mount point, per-mount options and fs type of the standard mounts
  'awk \'{ for (i = 7; $i != "-"; i++); print $5, $6, $(i+1) }\' /proc/self/mountinfo | grep -E "^/(proc|dev|dev/pts|dev/shm|dev/mqueue|sys|proc/sys|proc/bus|proc/fs|proc/irq|proc/sysrq-trigger|proc/timer_list|proc/keys|sys/firmware|proc/acpi|out|ro) " | sort',
  'touch /rootcheck 2>/dev/null && echo root-rw || echo root-ro',
  'mkdir /tmp/sc 2>&1 | sed "s/^.*: //"',
  'echo "pid1=$$"',
  'readlink /proc/1/exe',
  'exit 3',
].join('; ');

async function compare(name: string, patch: (s: Spec) => void): Promise<void> {
  const results: Record<string, { code: number | null; stdout: string; stderr: string }> = {};
  for (const r of runtimes) {
    const b = await makeBundle(`diff-${r.name}`, ['sh', '-c', probe], (s) => {
      s.process.env.push('FOO=bar');
      patch(s);
    });
    bundles.push(b);
    const res = await r.exec(['run', '--bundle', b.dir, b.id]);
    results[r.name] = { code: res.code, stdout: res.stdout, stderr: res.stderr.split('\n').filter((l) => l && !/warning/i.test(l)).join('\n') };
    // runc/crun keep nothing after `run`; make sure of it for all.
    await r.exec(['delete', '--force', b.id]);
  }
  // crun 1.8 makes two choices of its own that runc and crib do not: a /dev/core -> /proc/kcore
  // link, and masking files with the host's /dev/null (devtmpfs, ro). Leave those lines out.
  if (results.crun) {
    results.crun.stdout = results.crun.stdout.split('\n')
      .filter((l) => !/ \/proc\/kcore$/.test(l) && !/^\/proc\/(keys|timer_list) /.test(l)).join('\n');
    results.crunView = { ...results.crib, stdout: results.crib.stdout.split('\n')
      .filter((l) => !/^\/proc\/(keys|timer_list) /.test(l)).join('\n') };
  }
  const crib = results.crib;
  expect(crib.stdout).toContain('exit-check');
  for (const other of runtimes.slice(1)) {
    const mine = other.name === 'crun' ? results.crunView : crib;
    expect({ runtime: 'crib', vs: other.name, scenario: name, ...mine }).toEqual({ ...results[other.name], runtime: 'crib', vs: other.name, scenario: name });
  }
}

describe.skipIf(!haveRunc)('same results as runc' + (haveCrun ? ' and crun' : ''), () => {
  it('default spec', async () => {
    await compare('default', () => {});
  });

  it('user, groups, umask, cwd, rlimits, oom score, hostname', async () => {
    await compare('process', (s) => {
      s.process.user = { uid: 1000, gid: 1000, additionalGids: [5, 6], umask: 0o027 };
      s.process.cwd = '/tmp';
      s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }];
      s.process.oomScoreAdj = 300;
      s.hostname = 'diffbox';
      // (domainname is left out: Debian's runc 1.1 predates it and ignores it.)
    });
  });

  it('capabilities, no_new_privs off, seccomp errno rule, read-only root and a ro bind', async () => {
    await compare('security', (s) => {
      const caps = ['CAP_CHOWN', 'CAP_NET_RAW', 'CAP_SYS_CHROOT'];
      s.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: ['CAP_CHOWN'], ambient: [] };
      s.process.noNewPrivileges = false;
      s.root.readonly = true;
      s.mounts.push({ destination: '/ro', type: 'bind', source: '/etc', options: ['rbind', 'ro', 'nosuid'] });
      s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }] };
    });
  });
});
