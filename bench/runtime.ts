// Benchmark: create + start + wait of busybox `true` in a fresh container, N times (BENCH_N,
// default 200), under crib-runtime, runc and crun, each through its `run` verb (create, start,
// wait, delete in one process). Runs are interleaved so machine noise hits all alike.
// crun goes through `unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun ...'` because
// Debian's crun 1.8 refuses the hybrid cgroup layout; that wrapper is timed alone too.
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBinaries } from '../src/native-paths.js';

const N = Number(process.env.BENCH_N ?? 200);
const WARMUP = Math.min(10, Math.max(1, Math.floor(N / 20)));

interface Contender {
  name: string;
  argv: (id: string) => string[];
  samples: number[];
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, bin)));
}

async function makeBundle(dir: string, cgroupsPath: string): Promise<void> {
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
  await chmod(dir, 0o755);
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  await symlink('busybox', join(rootfs, 'bin', 'true'));
  await symlink('busybox', join(rootfs, 'bin', 'sh'));
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/true'], cwd: '/',
      env: ['PATH=/bin'], noNewPrivileges: true,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'bench',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      cgroupsPath,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
}

function timeRun(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${argv.join(' ')}: exit ${code}: ${err.trim()}`));
      else resolve(ms);
    });
  });
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'crib-bench-runtime-'));
  const tag = `crib-bench-${process.pid}`;
  const contenders: Contender[] = [];
  try {
    const add = async (name: string, argv: (bundle: string, root: string, id: string) => string[]) => {
      const bundle = join(work, `${name}-bundle`);
      const root = join(work, `${name}-state`);
      await makeBundle(bundle, `/${tag}-${name}`);
      contenders.push({ name, argv: (id) => argv(bundle, root, id), samples: [] });
    };
    await add('crib-runtime', (b, r, id) => [nativeBinaries.runtime, '--root', r, 'run', '--bundle', b, id]);
    if (onPath('runc')) await add('runc', (b, r, id) => ['runc', '--root', r, 'run', '--bundle', b, id]);
    else console.log('runc: not installed, skipped');
    const wrapper = ['unshare', '-m', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', 'wrap'];
    if (onPath('crun') && onPath('unshare')) {
      await add('crun (+wrapper)', (b, r, id) => [...wrapper, 'crun', '--root', r, 'run', '--bundle', b, id]);
      contenders.push({ name: 'wrapper alone', argv: () => [...wrapper, 'true'], samples: [] });
    } else {
      console.log('crun: not installed, skipped');
    }

    console.log(`create+start+wait of /bin/true, N=${N} per runtime (after ${WARMUP} warm-up runs), interleaved`);
    for (let i = -WARMUP; i < N; i++) {
      for (const c of contenders) {
        const ms = await timeRun(c.argv(`b${process.pid}-${i + WARMUP}`));
        if (i >= 0) c.samples.push(ms);
      }
    }

    const stats = new Map<string, { median: number; p95: number; mean: number }>();
    console.log('\nruntime              median ms    p95 ms   mean ms');
    for (const c of contenders) {
      const s = [...c.samples].sort((a, b) => a - b);
      const st = { median: quantile(s, 0.5), p95: quantile(s, 0.95), mean: s.reduce((a, b) => a + b, 0) / s.length };
      stats.set(c.name, st);
      console.log(`${c.name.padEnd(18)} ${st.median.toFixed(2).padStart(10)} ${st.p95.toFixed(2).padStart(9)} ${st.mean.toFixed(2).padStart(9)}`);
    }
    const crib = stats.get('crib-runtime')!;
    const ratio = (name: string, other: { median: number; p95: number }) =>
      console.log(`${name} / crib-runtime: median ${(other.median / crib.median).toFixed(2)}x, p95 ${(other.p95 / crib.p95).toFixed(2)}x`);
    console.log('');
    if (stats.has('runc')) ratio('runc', stats.get('runc')!);
    const crun = stats.get('crun (+wrapper)');
    const wrap = stats.get('wrapper alone');
    if (crun && wrap) {
      ratio('crun incl. wrapper', crun);
      ratio('crun minus wrapper', { median: crun.median - wrap.median, p95: crun.p95 - wrap.p95 });
      console.log('(crun is timed through the unshare wrapper; "minus wrapper" subtracts the wrapper\'s own median/p95)');
    }
  } finally {
    // Any container left by a failed run: ask each runtime to delete it, then drop the files.
    for (const c of contenders) {
      if (c.name === 'wrapper alone') continue;
      const root = join(work, `${c.name}-state`);
      if (!existsSync(root)) continue;
      const list = spawnSync(c.argv('x')[0] === 'unshare' ? 'crun' : c.argv('x')[0], ['--root', root, 'list', '-q'], { encoding: 'utf8' });
      for (const id of (list.stdout ?? '').split('\n').filter(Boolean)) {
        spawnSync(c.argv('x')[0] === 'unshare' ? 'crun' : c.argv('x')[0], ['--root', root, 'delete', '--force', id]);
      }
    }
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
