// crib-runtime's lifecycle verbs: create/start split, state, kill, delete, failed creates that
// leave nothing behind, exec, a terminal through --console-socket, list/ps/update/features,
// pause/resume.
// Containers are created under a child-subreaper helper (standing in for crib-monitor) so
// their inits are reaped and their exit codes observed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, testTag, type Bundle, type Spec } from './support/runtime-bundle.js';
import {
  NOTHING_LEFT, Runtime, alive, buildHelper, cribRuntime, deleteListed, leftoverCgroups, leftovers, mountsUnder, runProcess,
  waitFor,
} from './support/runtime-runner.js';

let rt: Runtime;
let helpers: string;
let reaperBin: string;
let consoleBin: string;
const bundles: Bundle[] = [];
const reapers: Reaper[] = [];

beforeAll(async () => {
  rt = await Runtime.crib();
  helpers = await mkdtemp(join(tmpdir(), `${testTag}-helpers-`));
  reaperBin = buildHelper('runtime-reaper', helpers);
  consoleBin = buildHelper('runtime-console', helpers);
});

afterAll(async () => {
  for (const r of reapers) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
  const listed = await deleteListed(rt);
  await Promise.all(reapers.map((r) => r.done));
  for (const b of bundles) await b.remove();
  await rm(helpers, { recursive: true, force: true });
  await rm(rt.root, { recursive: true, force: true });
  // Every test deletes what it made: anything still listed here leaked.
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** `crib-runtime create` run under the subreaper helper; reports arrive on its fd 3. */
class Reaper {
  readonly lines: string[] = [];
  stdout = '';
  stderr = '';
  readonly done: Promise<void>;
  constructor(readonly proc: ChildProcess) {
    proc.stdio[3]!.on('data', (d: Buffer) => this.lines.push(...d.toString().split('\n').filter(Boolean)));
    proc.stdout!.on('data', (d) => { this.stdout += d; });
    proc.stderr!.on('data', (d) => { this.stderr += d; });
    this.done = new Promise((r) => proc.on('close', () => r()));
  }

  cmdCode(): Promise<number> {
    return waitFor('create to finish', () => {
      const l = this.lines.find((x) => x.startsWith('cmd '));
      return l === undefined ? undefined : { c: Number(l.split(' ')[1]) };
    }).then((x) => x.c);
  }

  exitCode(pid: number): Promise<number> {
    return waitFor(`container ${pid} to exit`, () => {
      const l = this.lines.find((x) => x.startsWith(`exit ${pid} `));
      return l === undefined ? undefined : { c: Number(l.split(' ')[2]) };
    }).then((x) => x.c);
  }
}

async function create(args: string[], patch?: (s: Spec) => void, extra: string[] = []): Promise<{ b: Bundle; r: Reaper; code: number }> {
  const b = await makeBundle('lc', args, patch);
  bundles.push(b);
  const proc = spawn(reaperBin, [cribRuntime, '--root', rt.root, 'create', '--bundle', b.dir, '--pid-file', join(b.dir, 'pid'), ...extra, b.id],
    { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  const r = new Reaper(proc);
  reapers.push(r);
  return { b, r, code: await r.cmdCode() };
}

describe('create / start / state / kill / delete', () => {
  it('does not run the process before start; states go created -> running -> stopped', async () => {
    const { b, r, code } = await create(['sh', '-c', 'echo started > /out/started; exec sleep 1000'], (s) => {
      s.annotations = { 'org.example/key': 'value' };
    });
    expect(r.stderr).toBe('');
    expect(code).toBe(0);
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    let st = await rt.state(b.id);
    expect(st).toMatchObject({ ociVersion: '1.0.2', id: b.id, status: 'created', pid, bundle: b.dir,
      annotations: { 'org.example/key': 'value' } });
    expect(alive(pid)).toBe(true);
    // Parked: nothing of the process has run yet.
    expect(existsSync(join(b.out, 'started'))).toBe(false);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('crib-runtime');
    // Its namespaces already exist.
    expect(readlinkSync(`/proc/${pid}/ns/pid`)).not.toBe(readlinkSync('/proc/self/ns/pid'));

    const start = await rt.exec(['start', b.id]);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    await waitFor('process to run', () => existsSync(join(b.out, 'started')));
    st = await rt.state(b.id);
    expect(st.status).toBe('running');
    expect(st.pid).toBe(pid);
    const again = await rt.exec(['start', b.id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/crib-runtime: container `.*` is running: only a created container can be started/);

    const del = await rt.exec(['delete', b.id]);
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/is running: stop it first or use --force/);

    // pid 1 of a pid namespace ignores signals it has no handler for: SIGKILL, by name.
    const kill = await rt.exec(['kill', b.id, 'SIGKILL']);
    expect(kill.code).toBe(0);
    expect(await r.exitCode(pid)).toBe(128 + 9);
    st = await rt.state(b.id);
    expect(st.status).toBe('stopped');
    expect((await rt.exec(['kill', b.id, 'KILL'])).stderr).toMatch(/is not running/);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
    expect((await rt.exec(['state', b.id])).stderr).toMatch(/container `.*` does not exist/);
  });

  it('delete --force kills a running container and everything in its cgroup', async () => {
    const { b, r, code } = await create(['sh', '-c', 'sleep 1000 & sleep 1000 & echo up > /out/up; wait']);
    expect(code).toBe(0);
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    await waitFor('children', () => existsSync(join(b.out, 'up')));
    const ps = await rt.exec(['ps', '--format', 'json', b.id]);
    const pids = JSON.parse(ps.stdout) as number[];
    expect(pids).toContain(pid);
    expect(pids.length).toBe(3);
    const del = await rt.exec(['delete', '--force', b.id]);
    expect(del.stderr).toBe('');
    expect(del.code).toBe(0);
    expect(await r.exitCode(pid)).toBe(128 + 9);
    await waitFor('all gone', () => pids.every((p) => !alive(p)));
    expect(existsSync(join(rt.root, b.id))).toBe(false);
  });

  it('kill --all signals every process; delete of a created container works without --force', async () => {
    const { b, r } = await create(['sleep', '1000']);
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['kill', '--all', b.id, '9'])).code).toBe(0);
    expect(await r.exitCode(pid)).toBe(137);
    const { b: b2, r: r2 } = await create(['sleep', '1000']);
    const pid2 = Number(await readFile(join(b2.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['delete', b2.id])).code).toBe(0);
    expect(await r2.exitCode(pid2)).toBe(137);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
  });

  it('refuses a second container with the same id', async () => {
    const { b, code } = await create(['sleep', '1000']);
    expect(code).toBe(0);
    const again = await rt.exec(['create', '--bundle', b.dir, b.id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/crib-runtime: container `.*` already exists/);
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });
});

describe('failed create leaves nothing behind', () => {
  const cases: [string, string[], (s: Spec) => void, RegExp][] = [
    ['bad cwd', ['true'], (s) => { s.process.cwd = '/no/such/dir'; }, /crib-runtime: process.cwd: chdir `\/no\/such\/dir`: No such file or directory/],
    ['bad binary', ['/bin/no-such-binary'], () => {}, /crib-runtime: process.args\[0\]: exec `\/bin\/no-such-binary`: No such file or directory/],
    ['binary not in PATH', ['no-such-cmd'], () => {}, /crib-runtime: process.args\[0\]: exec `no-such-cmd`: executable file not found in \$PATH/],
    ['bad mount', ['true'], (s) => { s.mounts.push({ destination: '/x', type: 'bind', source: '/no/such/source', options: ['bind'] }); },
      /crib-runtime: mounts\[\d+\] \(\/x\): source `\/no\/such\/source`: No such file or directory/],
    ['bad netns path', ['true'], (s) => { s.linux.namespaces.push({ type: 'network', path: '/no/such/netns' }); s.linux.namespaces.shift(); },
      /crib-runtime: open network namespace `\/no\/such\/netns`: No such file or directory/],
    ['bad cwd in a user namespace', ['true'], (s) => {
      s.process.cwd = '/no/such/dir';
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
    }, /crib-runtime: process.cwd: chdir `\/no\/such\/dir`: No such file or directory/],
    ['bad sysctl', ['true'], (s) => { s.linux.sysctl = { 'net.no.such.key': '1' }; }, /crib-runtime: linux.sysctl `net.no.such.key`: open `\/proc\/sys\/net\/no\/such\/key`/],
  ];
  for (const [name, args, patch, msg] of cases) {
    it(name, async () => {
      const { b, r, code } = await create(args, (s) => {
        if (name === 'bad netns path') s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'network').concat({ type: 'network', path: '/no/such/netns' });
        else patch(s);
      });
      expect(code).toBe(1);
      expect(r.stderr).toMatch(msg);
      // The reaper exits only once no process of the container is left; crib-runtime reaped
      // its own child, so no orphan ever reached the reaper.
      await r.done;
      expect(r.lines).toEqual(['cmd 1']);
      expect(existsSync(join(rt.root, b.id))).toBe(false);
      expect(existsSync(join(b.dir, 'pid'))).toBe(false);
      expect(leftoverCgroups().filter((c) => c.endsWith(b.id))).toEqual([]);
      expect(mountsUnder(b.dir)).toEqual([]);
    });
  }

  it('rejects a malformed config.json with the field named', async () => {
    const b = await makeBundle('bad', ['true'], (s) => { s.process.args = 'true'; });
    bundles.push(b);
    const r = await rt.exec(['create', '--bundle', b.dir, b.id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/crib-runtime: `.*config.json`: process.args: expected array/);
    expect(existsSync(join(rt.root, b.id))).toBe(false);
  });
});

describe('exec', () => {
  it('runs in the same namespaces, hostname and cgroup; exit code comes back', async () => {
    const { b, r } = await create(['sh', '-c', 'echo $$ > /out/init; exec sleep 1000'], (s) => { s.hostname = 'exec-box'; });
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    await waitFor('started', () => existsSync(join(b.out, 'init')));
    const e = await rt.exec(['exec', b.id, 'sh', '-c', 'hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; ps -o args | grep -cx "sleep 1000"; grep NoNewPrivs /proc/self/status; exit 7']);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(7);
    const lines = e.stdout.trim().split('\n');
    expect(lines[0]).toBe('exec-box');
    expect(lines[1]).toBe(readlinkSync(`/proc/${pid}/ns/pid`));
    expect(lines[2]).toBe(readlinkSync(`/proc/${pid}/ns/mnt`));
    expect(lines[3]).toBe('1');
    expect(lines[4]).toMatch(/NoNewPrivs:\s+1/);
    // --env, --cwd, --user and a detached exec with a pid file.
    const e2 = await rt.exec(['exec', '--env', 'X=1', '--cwd', '/tmp', '--user', '1000:1001', b.id, 'sh', '-c', 'echo $X $(pwd) $(id -u) $(id -g)']);
    expect(e2.stdout).toBe('1 /tmp 1000 1001\n');
    const pidFile = join(b.dir, 'exec.pid');
    const e3 = await rt.exec(['exec', '--detach', '--pid-file', pidFile, b.id, 'sh', '-c', 'exec sleep 1000 2>/dev/null'], { detached: true });
    expect(e3.code).toBe(0);
    const epid = Number(await readFile(pidFile, 'utf8'));
    expect(readFileSync(`/proc/${epid}/cgroup`, 'utf8')).toBe(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    const procs = JSON.parse((await rt.exec(['ps', '--format', 'json', b.id])).stdout) as number[];
    expect(procs).toContain(epid);
    // --process with a process.json.
    await writeFile(join(b.dir, 'p.json'), JSON.stringify({ args: ['sh', '-c', 'echo from-json $Y'], env: ['Y=2', 'PATH=/bin'], cwd: '/' }));
    const e4 = await rt.exec(['exec', '--process', join(b.dir, 'p.json'), b.id]);
    expect(e4.stdout).toBe('from-json 2\n');
    const bad = await rt.exec(['exec', b.id, 'no-such-cmd']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/crib-runtime: exec in `.*`: exec `no-such-cmd`: executable file not found in \$PATH/);
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    expect(await r.exitCode(pid)).toBe(137);
    await waitFor('exec process gone', () => !alive(epid));
  });
});

describe('exec security', () => {
  it('the exec\'d process gets the container\'s user, capabilities and seccomp filter', async () => {
    const { b } = await create(['sleep', '1000'], (s) => {
      s.process.user = { uid: 4321, gid: 4321 };
      s.process.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: [], ambient: ['CAP_KILL'] };
      s.process.capabilities.inheritable = ['CAP_KILL'];
      s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
    });
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    const e = await rt.exec(['exec', b.id, 'sh', '-c', 'id -u; grep -E "^(CapEff|CapBnd|Seccomp):" /proc/self/status; mkdir /tmp/x 2>&1']);
    expect(e.code).toBe(1);
    const lines = e.stdout.trim().split('\n');
    expect(lines[0]).toBe('4321');
    expect(lines[1]).toMatch(/CapEff:\s+0000000000000020/);
    expect(lines[2]).toMatch(/CapBnd:\s+0000000000000020/);
    expect(lines[3]).toMatch(/Seccomp:\s+2/);
    expect(lines[4]).toMatch(/Operation not permitted/);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/CapEff:\s+0000000000000020/);
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });

  it('exec into a container with its own user namespace', async () => {
    const { b, r, code } = await create(['sleep', '1000'], (s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 400000, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 400000, size: 65536 }];
    });
    expect(r.stderr).toBe('');
    expect(code).toBe(0);
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    const e = await rt.exec(['exec', b.id, 'sh', '-c', 'id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user']);
    expect(e.stderr).toBe('');
    const lines = e.stdout.trim().split('\n');
    expect(lines[0]).toBe('0');
    expect(lines[1].trim().split(/\s+/)).toEqual(['0', '400000', '65536']);
    expect(lines[2]).toBe(readlinkSync(`/proc/${pid}/ns/user`));
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    expect(await r.exitCode(pid)).toBe(137);
  });

  it('state notices a reused pid through the saved start time', async () => {
    const { b } = await create(['sleep', '1000']);
    expect((await rt.state(b.id)).status).toBe('created');
    const file = join(rt.root, b.id, 'state.json');
    const saved = JSON.parse(await readFile(file, 'utf8'));
    // Same pid, different start time: what a recycled pid looks like.
    await writeFile(file, JSON.stringify({ ...saved, startTime: String(Number(saved.startTime) + 1) }));
    expect((await rt.state(b.id)).status).toBe('stopped');
    await writeFile(file, JSON.stringify(saved));
    expect((await rt.state(b.id)).status).toBe('created');
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });
});

describe('terminal', () => {
  it('sends the pty master over --console-socket; the process has a tty as stdio', async () => {
    const sock = join(helpers, `console-${Date.now()}.sock`);
    const recv = spawn(consoleBin, [sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    recv.stdout.on('data', (d) => { out += d; });
    const closed = new Promise<void>((r) => recv.on('close', () => r()));
    await waitFor('console receiver', () => out.includes('ready'));
    const { b, r, code } = await create(['sh', '-c', 'tty; stty size; readlink /proc/self/fd/0; ls -l /dev/console'], (s) => {
      s.process.terminal = true;
      s.process.consoleSize = { height: 33, width: 101 };
    }, ['--console-socket', sock]);
    expect(r.stderr).toBe('');
    expect(code).toBe(0);
    await waitFor('fd passed', () => out.includes('got-fd'));
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    expect(await r.exitCode(pid)).toBe(0);
    await closed;
    expect(out).toMatch(/\/dev\/pts\/0\r?\n/);
    expect(out).toMatch(/33 101\r?\n/);
    expect(out).toMatch(/crw.* \/dev\/console/);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
  });

  it('exec --tty gets its own pty from the container\'s devpts', async () => {
    const { b, r } = await create(['sleep', '1000']);
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    const sock = join(helpers, `exec-console-${Date.now()}.sock`);
    const recv = spawn(consoleBin, [sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    recv.stdout.on('data', (d) => { out += d; });
    const closed = new Promise<void>((res) => recv.on('close', () => res()));
    await waitFor('console receiver', () => out.includes('ready'));
    const e = await rt.exec(['exec', '--tty', '--console-socket', sock, b.id, 'sh', '-c', 'tty; readlink /proc/self/ns/pid']);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    await closed;
    expect(out).toContain('got-fd');
    expect(out).toMatch(/\/dev\/pts\/\d+\r?\n/);
    expect(out).toContain(readlinkSync(`/proc/${pid}/ns/pid`));
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    expect(await r.exitCode(pid)).toBe(137);
  });

  it('refuses a terminal without --console-socket', async () => {
    const { r, code } = await create(['true'], (s) => { s.process.terminal = true; });
    expect(code).toBe(1);
    expect(r.stderr).toMatch(/process.terminal is set: --console-socket is required/);
  });
});

describe('namespaces and cgroups shared with other containers', () => {
  it('joins another container\'s pid namespace by path (a pod sharing one pid namespace)', async () => {
    const { b: a, code } = await create(['sleep', '1000']);
    expect(code).toBe(0);
    const apid = Number(await readFile(join(a.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', a.id])).code).toBe(0);
    const { b, r, code: code2 } = await create(['sh', '-c', 'ps -o pid,args > /out/ps; readlink /proc/self/ns/pid > /out/ns'], (s) => {
      s.linux.namespaces = s.linux.namespaces.map((n: any) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${apid}/ns/pid` } : n));
    });
    expect(r.stderr).toBe('');
    expect(code2).toBe(0);
    const bpid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    expect(await r.exitCode(bpid)).toBe(0);
    expect((await readFile(join(b.out, 'ns'), 'utf8')).trim()).toBe(readlinkSync(`/proc/${apid}/ns/pid`));
    expect(await readFile(join(b.out, 'ps'), 'utf8')).toMatch(/^\s*1 sleep 1000$/m);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
    expect((await rt.exec(['delete', '--force', a.id])).code).toBe(0);
  });

  it('a terminal container joining another\'s pid namespace keeps its tty (set up outside, forked in)', async () => {
    const { b: a } = await create(['sleep', '1000']);
    const apid = Number(await readFile(join(a.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', a.id])).code).toBe(0);
    const sock = join(helpers, `pidns-console-${Date.now()}.sock`);
    const recv = spawn(consoleBin, [sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    recv.stdout.on('data', (d) => { out += d; });
    const closed = new Promise<void>((r) => recv.on('close', () => r()));
    await waitFor('console receiver', () => out.includes('ready'));
    const { b, r, code } = await create(['sh', '-c', 'tty; readlink /proc/self/ns/pid; ps -o pid,args'], (s) => {
      s.process.terminal = true;
      s.linux.namespaces = s.linux.namespaces.map((n: any) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${apid}/ns/pid` } : n));
    }, ['--console-socket', sock]);
    expect(r.stderr).toBe('');
    expect(code).toBe(0);
    const bpid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    expect(await r.exitCode(bpid)).toBe(0);
    await closed;
    expect(out).toMatch(/\/dev\/pts\/0\r?\n/);
    expect(out).toContain(readlinkSync(`/proc/${apid}/ns/pid`));
    // Its /proc is the joined namespace's: the other container's process is pid 1 there.
    expect(out).toMatch(/^\s*1 sleep 1000\r?$/m);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
    expect((await rt.exec(['delete', '--force', a.id])).code).toBe(0);
  });

  it('systemd-style cgroupsPath (slice:prefix:name)', async () => {
    const slice = `${testTag.replace(/-/g, '_')}.slice`;
    const { b, code, r } = await create(['sleep', '1000'], (s) => { s.linux.cgroupsPath = `${slice}:crib:${'x' + process.pid}`; });
    try {
      expect(r.stderr).toBe('');
      expect(code).toBe(0);
      const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toMatch(new RegExp(`:pids:/${slice}/crib-x${process.pid}\\.scope$`, 'm'));
      expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    } finally {
      for (const h of ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'systemd', 'unified']) {
        try { rmdirSync(`/sys/fs/cgroup/${h}/${slice}`); } catch { /* not made in this hierarchy */ }
      }
    }
  });

  it('--log --log-format json records the error as a JSON line', async () => {
    const b = await makeBundle('log', ['true'], (s) => { s.process.cwd = 'relative'; });
    bundles.push(b);
    const log = join(b.dir, 'runtime.log');
    const r = await runProcess(cribRuntime, ['--root', rt.root, '--log', log, '--log-format', 'json', 'create', '--bundle', b.dir, b.id]);
    expect(r.code).toBe(1);
    const line = JSON.parse((await readFile(log, 'utf8')).trim());
    expect(line).toMatchObject({ level: 'error', msg: expect.stringMatching(/process.cwd: `relative` is not an absolute path/) });
  });
});

describe('hooks', () => {
  const sh = (script: string, extra: Record<string, unknown> = {}) => ({ path: '/bin/sh', args: ['sh', '-c', script], ...extra });

  it('runs every stage with the state on stdin, in the right namespaces', async () => {
    const hostDir = await mkdtemp(join(tmpdir(), `${testTag}-hooks-`));
    try {
      const { b, r, code } = await create(['true'], (s) => {
        s.hooks = {
          prestart: [sh(`cat > ${hostDir}/prestart.json`)],
          createRuntime: [sh(`cat > ${hostDir}/createRuntime.json; p=$(sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p' ${hostDir}/createRuntime.json); readlink /proc/$p/ns/net > ${hostDir}/createRuntime.net; readlink /proc/self/ns/net > ${hostDir}/createRuntime.self`)],
          createContainer: [sh(`cat > ${hostDir}/createContainer.json; readlink /proc/self/ns/net > ${hostDir}/createContainer.net`)],
          // After pivot_root: this /bin/sh and /out are the container's.
          startContainer: [sh('cat > /out/startContainer.json')],
          poststart: [sh(`cat > ${hostDir}/poststart.json`)],
          poststop: [sh(`cat > ${hostDir}/poststop.json`)],
        };
      });
      expect(r.stderr).toBe('');
      expect(code).toBe(0);
      const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
      const cr = JSON.parse(await readFile(join(hostDir, 'createRuntime.json'), 'utf8'));
      expect(cr).toMatchObject({ id: b.id, status: 'creating', pid, bundle: b.dir });
      expect(JSON.parse(await readFile(join(hostDir, 'prestart.json'), 'utf8'))).toMatchObject({ id: b.id, pid });
      const containerNet = readlinkSync(`/proc/${pid}/ns/net`);
      // createRuntime runs in the runtime's namespace, once the container's exist.
      expect((await readFile(join(hostDir, 'createRuntime.net'), 'utf8')).trim()).toBe(containerNet);
      expect((await readFile(join(hostDir, 'createRuntime.self'), 'utf8')).trim()).toBe(readlinkSync('/proc/self/ns/net'));
      // createContainer runs inside them.
      expect((await readFile(join(hostDir, 'createContainer.net'), 'utf8')).trim()).toBe(containerNet);
      expect(JSON.parse(await readFile(join(hostDir, 'createContainer.json'), 'utf8'))).toMatchObject({ id: b.id, pid });
      expect(existsSync(join(b.out, 'startContainer.json'))).toBe(false);
      expect((await rt.exec(['start', b.id])).code).toBe(0);
      expect(await r.exitCode(pid)).toBe(0);
      expect(JSON.parse(await readFile(join(b.out, 'startContainer.json'), 'utf8'))).toMatchObject({ id: b.id, pid });
      expect(JSON.parse(await readFile(join(hostDir, 'poststart.json'), 'utf8'))).toMatchObject({ id: b.id, status: 'running' });
      expect((await rt.exec(['delete', b.id])).code).toBe(0);
      expect(JSON.parse(await readFile(join(hostDir, 'poststop.json'), 'utf8'))).toMatchObject({ id: b.id, status: 'stopped' });
    } finally {
      await rm(hostDir, { recursive: true, force: true });
    }
  });

  it('a failing or timed-out createRuntime hook fails create and leaves nothing', async () => {
    const { b, r, code } = await create(['true'], (s) => { s.hooks = { createRuntime: [sh('exit 3')] }; });
    expect(code).toBe(1);
    expect(r.stderr).toMatch(/crib-runtime: hooks.createRuntime\[0\] `\/bin\/sh`: exited with status 3/);
    await r.done;
    expect(existsSync(join(rt.root, b.id))).toBe(false);
    const t = await create(['true'], (s) => { s.hooks = { prestart: [sh('exec sleep 30', { timeout: 1 })] }; });
    expect(t.code).toBe(1);
    expect(t.r.stderr).toMatch(/crib-runtime: hooks.prestart\[0\] `\/bin\/sh`: timed out after 1s/);
    await t.r.done;
    expect(existsSync(join(rt.root, t.b.id))).toBe(false);
  });
});

describe('list, update, features', () => {
  it('list shows containers with status; update changes the live cgroup', async () => {
    const { b } = await create(['sleep', '1000'], (s) => { s.linux.resources.pids = { limit: 100 }; });
    const list = JSON.parse((await rt.exec(['list', '--format', 'json'])).stdout) as any[];
    expect(list.find((c) => c.id === b.id)).toMatchObject({ status: 'created', bundle: b.dir });
    const table = (await rt.exec(['list'])).stdout;
    expect(table).toMatch(new RegExp(`^${b.id}\\s+\\d+\\s+created\\s+`, 'm'));
    const cg = `/sys/fs/cgroup/pids/${testTag}-${b.id}/pids.max`;
    expect(readFileSync(cg, 'utf8').trim()).toBe('100');
    const u = await rt.exec(['update', '--resources', '-', b.id], { input: JSON.stringify({ pids: { limit: 42 } }) });
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    expect(readFileSync(cg, 'utf8').trim()).toBe('42');
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });

  it('pause freezes every process of the container until resume; kill --all still ends a paused one', async () => {
    // Counts into a file of its own, with a child that does the same: both must stand still.
    const { b, r } = await create(['sh', '-c', 'i=0; (j=0; while :; do j=$((j+1)); echo $j > /out/child; sleep 0.01; done) & '
      + 'while :; do i=$((i+1)); echo $i > /out/count; sleep 0.01; done']);
    const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
    const refused = await rt.exec(['pause', b.id]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/pause: container `.*` is created, not running/);
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    const count = (f: string) => Number(readFileSync(join(b.out, f), 'utf8').trim() || 0);
    await waitFor('both counting', () => existsSync(join(b.out, 'count')) && existsSync(join(b.out, 'child')) && count('count') > 3);

    const paused = await rt.exec(['pause', b.id]);
    expect(paused.stderr).toBe('');
    expect(paused.code).toBe(0);
    const freezer = `/sys/fs/cgroup/freezer/${testTag}-${b.id}/freezer.state`;
    expect(readFileSync(freezer, 'utf8').trim()).toBe('FROZEN');
    const at = [count('count'), count('child')];
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([count('count'), count('child')], 'nothing runs while paused').toEqual(at);
    // Still running to the runtime: CRI has no paused state.
    expect((await rt.state(b.id)).status).toBe('running');
    // Pausing twice is no error.
    expect((await rt.exec(['pause', b.id])).code).toBe(0);

    const resumed = await rt.exec(['resume', b.id]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(readFileSync(freezer, 'utf8').trim()).toBe('THAWED');
    await waitFor('both counting again', () => count('count') > at[0]! + 3 && count('child') > at[1]! + 3);
    // Resuming a container that is not paused is no error.
    expect((await rt.exec(['resume', b.id])).code).toBe(0);
    expect((await rt.exec(['resume', '--now', b.id])).stderr).toMatch(/unknown flag `--now`/);

    // A paused container still goes when killed.
    expect((await rt.exec(['pause', b.id])).code).toBe(0);
    expect((await rt.exec(['kill', '--all', b.id, 'KILL'])).code).toBe(0);
    expect(await r.exitCode(pid)).toBe(128 + 9);
    // Nothing left to thaw once it is gone.
    expect((await rt.exec(['resume', b.id])).code).toBe(0);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
    expect((await rt.exec(['pause', b.id])).stderr).toMatch(/container `.*` does not exist/);
  });

  it('checkpoint dies with the process that asked for it, and its criu with it', async () => {
    // A criu that never ends (this host's criu fails at once): its pid on file, then asleep.
    const dir = await mkdtemp(join(tmpdir(), `${testTag}-ckpt-`));
    let criuPid: number | undefined;
    try {
      const fakeCriu = join(dir, 'criu');
      await writeFile(fakeCriu, `#!/bin/sh\necho $$ > ${dir}/criu.pid\nexec sleep 1000\n`, { mode: 0o755 });
      const { b, r } = await create(['sleep', '1000']);
      const pid = Number(await readFile(join(b.dir, 'pid'), 'utf8'));
      expect((await rt.exec(['start', b.id])).code).toBe(0);
      // The asker: a shell that waits for the checkpoint (`; true` keeps it from exec'ing it).
      const asker = spawn('sh', ['-c', `${cribRuntime} --root ${rt.root} --criu ${fakeCriu} checkpoint --image-path ${dir}/images --leave-running ${b.id}; true`],
        { stdio: 'ignore' });
      criuPid = await waitFor('the fake criu to run', () => (existsSync(join(dir, 'criu.pid')) ? Number(readFileSync(join(dir, 'criu.pid'), 'utf8')) : undefined));
      expect(alive(criuPid)).toBe(true);
      asker.kill('SIGKILL');
      await waitFor('the checkpoint and its criu to die with the asker', () => !alive(criuPid!));
      // The container was not part of it.
      expect(alive(pid)).toBe(true);
      expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
      expect(await r.exitCode(pid)).toBe(128 + 9);
    } finally {
      // A failure leaves no fake criu behind (the runtime that started it is reaped by init).
      if (criuPid !== undefined && alive(criuPid)) process.kill(criuPid, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('features reports the OCI features document', async () => {
    const f = JSON.parse((await rt.exec(['features'])).stdout);
    expect(f.ociVersionMax).toBe('1.0.2');
    expect(f.linux.namespaces).toContain('user');
    expect(f.linux.seccomp.enabled).toBe(true);
    expect(f.mountOptions).toContain('rbind');
  });
});
