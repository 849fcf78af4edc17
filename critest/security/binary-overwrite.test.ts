// The runc CVE-2019-5736 class, performed for real through the CRI: a root process in a container
// tries to open the executable of every host process it can see (/proc/<pid>/exe), waits for the
// binary to go idle and reopens it for writing, while the test makes crib run its own binaries in
// the container's PID namespace: ExecSync (kubelet's exec probes) and container creation of a
// script whose interpreter is #!/proc/self/exe (which makes the kernel execute whatever binary the
// exec'ing process is), and pod-init as PID 1 of a shared-PID pod. The daemon runs COPIES of the
// native binaries (a successful attack destroys the binary it reaches); after each attack the
// copies must be byte-identical, the attacker must never have held an fd on one of them, and it
// must have seen and opened crib's process (so a pass is not a race that never happened).
// Also the runc CVE-2024-21626 class through the CRI: a working_dir of /proc/self/fd/N, for the
// container and for an ExecSync whose cwd the container turned into such a symlink.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nativeBinaries } from '../../src/native-paths.js';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, pushImage, type TarEntry } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const run = promisify(execFile);
const RACER_SRC = fileURLToPath(new URL('./support/exe-racer.c', import.meta.url));
const NAMES = ['runtime', 'monitor', 'pinns'] as const;
type Name = (typeof NAMES)[number];

interface HostCopy { path: string; source: string; sha256: string; id: string }

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const devIno = (path: string) => {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}`;
};

/** The racer's lines from a container's CRI log (stdout only, full lines). */
function racerLines(logPath: string): string[] {
  if (!existsSync(logPath)) return [];
  return readFileSync(logPath, 'utf8').split('\n')
    .map((l) => /^\S+ stdout F (.*)$/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
}

/** "OPENED <pid> <dev> <ino> <link>" / "EXE ..." / "WRITABLE <dev> <ino> <flags> <link>" → dev:ino. */
function idsOf(lines: string[], tag: 'OPENED' | 'EXE' | 'WRITABLE' | 'WROTE'): { id: string; line: string }[] {
  return lines.filter((l) => l.startsWith(`${tag} `)).map((line) => {
    const f = line.split(' ');
    const [dev, ino] = tag === 'OPENED' || tag === 'EXE' ? [f[2], f[3]] : [f[1], f[2]];
    return { id: `${dev}:${ino}`, line };
  });
}

/** The dynamic loader and libraries `binary` needs, as image entries at the same paths. An
 * attacker controls the image: with these in it, #!/proc/self/exe runs crib-runtime (dynamically
 * linked) as the container's process instead of failing on a missing loader. */
async function loaderEntries(binary: string, mtime: Date): Promise<TarEntry[]> {
  const { stdout } = await run('ldd', [binary]);
  const paths = [...stdout.matchAll(/(?:=> |^\s*)(\/\S+) \(/gm)].map((m) => m[1]!);
  const dirs = new Set<string>();
  for (const p of paths) for (let d = dirname(p); d !== '/'; d = dirname(d)) dirs.add(d.slice(1));
  return [
    ...[...dirs].sort().map((path): TarEntry => ({ type: 'dir', path, mode: 0o755, mtime })),
    ...(await Promise.all(paths.map(async (p): Promise<TarEntry> => ({ type: 'file', path: p.slice(1), content: await readFile(p), mode: 0o755, mtime })))),
  ];
}

describe('a container cannot overwrite crib\'s host binaries (CVE-2019-5736 class)', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let tmp: string;
  let logDir: string;
  let image: string;
  const copies = {} as Record<Name, HostCopy>;
  const podConfig = (name: string, extra: Record<string, unknown> = {}) => podConfigFactory('exe-race', logDir)(name, extra);
  const sharedPid = { namespaceOptions: { pid: 'POD' } };

  const container = (name: string, command: string[], extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 }, image: { image }, command, logPath: `${name}.log`, ...extra,
  });
  const logOf = (pod: { logDirectory: string }, name: string) => join(pod.logDirectory, `${name}.log`);

  /** The host copies the daemon runs, unchanged byte for byte. */
  const expectCopiesIntact = () => {
    for (const n of NAMES) expect({ binary: n, sha256: sha256(copies[n].path) }).toEqual({ binary: n, sha256: copies[n].sha256 });
  };
  /** The attacker never held an fd on a host copy, so never a writable one either. */
  const expectNoHostFd = (lines: string[]) => {
    const host = new Map(NAMES.map((n) => [copies[n].id, n]));
    const touched = [...idsOf(lines, 'OPENED'), ...idsOf(lines, 'EXE'), ...idsOf(lines, 'WRITABLE'), ...idsOf(lines, 'WROTE')]
      .filter((x) => host.has(x.id)).map((x) => `${host.get(x.id)}: ${x.line}`);
    expect(touched).toEqual([]);
  };

  async function startRacer(pod: { logDirectory: string }, podSandboxId: string, name: string, args: string[], extra: Record<string, unknown> = {}) {
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container(name, ['/exe-racer', ...args], extra), sandboxConfig: pod });
    await d.cri.runtime.StartContainer({ containerId });
    await waitFor('the racer to start', () => racerLines(logOf(pod, name)).includes('RACING'));
    return containerId;
  }

  /** After an attack: a new pod, a container and an ExecSync still work. */
  async function expectDaemonServes(): Promise<void> {
    const pod = podConfig('after');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container('c', ['/bin/sleep', '100']), sandboxConfig: pod });
    await d.cri.runtime.StartContainer({ containerId });
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/echo', 'still serving'], timeout: '10' });
    expect({ exitCode: r.exitCode, stdout: r.stdout.toString() }).toEqual({ exitCode: 0, stdout: 'still serving\n' });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  }

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'crib-exe-race-'));
    logDir = join(tmp, 'logs');
    await mkdir(join(tmp, 'bin'));
    for (const n of NAMES) {
      const path = join(tmp, 'bin', `crib-${n}`);
      await copyFile(nativeBinaries[n], path);
      await chmod(path, 0o755);
      copies[n] = { path, source: nativeBinaries[n], sha256: sha256(path), id: devIno(path) };
    }
    const racer = join(tmp, 'exe-racer');
    await run('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', racer, RACER_SRC]);
    const mtime = new Date('2024-01-01T00:00:00Z');
    const layer = await busyboxRootfsLayer({
      extra: [
        { type: 'file', path: 'exe-racer', content: await readFile(racer), mode: 0o755, mtime },
        // The kernel runs this script's interpreter, /proc/self/exe, as the exec'ing process's own
        // executable: crib-runtime's, in the init or exec child that execs it.
        { type: 'file', path: 'self-exe.sh', content: '#!/proc/self/exe\n', mode: 0o755, mtime },
        { type: 'dir', path: 'work', mode: 0o755, mtime },
        ...(await loaderEntries(copies.runtime.path, mtime)),
      ],
    });
    registry = await startRegistry();
    await pushImage(registry, 'security/exe-racer', 'latest', buildImage({ layers: [layer], config: { Cmd: ['/bin/sh'] } }));
    image = `${registry.host}/security/exe-racer:latest`;
    d = await startDaemon({
      env: { CRIB_RUNTIME_BINARY: copies.runtime.path, CRIB_MONITOR_BINARY: copies.monitor.path, CRIB_PINNS_BINARY: copies.pinns.path },
    });
    await d.cri.image.PullImage({ image: { image } });
  }, 120_000);

  /** After a successful attack the daemon could not even remove what it made: put back any
   * copy that changed (a new file: the racer may still hold the old one), then remove every pod,
   * so each test starts from intact binaries and no racer of an earlier test. */
  async function restoreAndClean(): Promise<void> {
    for (const n of NAMES) {
      if (!copies[n] || (existsSync(copies[n].path) && sha256(copies[n].path) === copies[n].sha256)) continue;
      await rm(copies[n].path, { force: true });
      await copyFile(copies[n].source, copies[n].path);
      await chmod(copies[n].path, 0o755);
      copies[n].id = devIno(copies[n].path);
    }
    if (!d) return;
    for (const p of (await d.cri.runtime.ListPodSandbox({})).items) await d.cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
  }

  afterEach(restoreAndClean, 60_000);

  afterAll(async () => {
    await restoreAndClean().catch(() => undefined);
    await d?.cleanup();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }, 120_000);

  it('ExecSync of a #!/proc/self/exe script (exec probes) never hands the racer crib-runtime', async () => {
    const pod = podConfig('exec-probe');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    const racer = await startRacer(pod, podSandboxId, 'racer', ['race']);
    const log = logOf(pod, 'racer');
    const sawRuntime = () => racerLines(log).some((l) => l.startsWith('OPENED ') && l.includes('crib-runtime'));
    // Each probe runs crib-runtime's exec child in the racer's PID namespace, then (through the
    // script) crib-runtime itself as the probe's process; the racer holds on to what it opens
    // and tries to write it whenever no probe runs.
    for (let i = 0; i < 40 && (i < 15 || !sawRuntime()); i++) {
      const r = await d.cri.runtime.ExecSync({ containerId: racer, cmd: ['/self-exe.sh'], timeout: '10' }).catch((e: Error) => e);
      if (r instanceof Error) break; // the runtime binary is gone: the asserts below say how
      await new Promise((res) => setTimeout(res, 20));
    }
    await new Promise((res) => setTimeout(res, 500));
    const lines = racerLines(log);
    expectCopiesIntact();
    expectNoHostFd(lines);
    expect(lines.filter((l) => l.startsWith('OPENED ') && l.includes('crib-runtime'))).not.toEqual([]);
    // The sealed copy refuses every write the racer got to try.
    expect(lines.filter((l) => l.startsWith('WROTE '))).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await expectDaemonServes();
  }, 60_000);

  it('creating a container of a #!/proc/self/exe script in a shared-PID pod never hands the racer crib-runtime', async () => {
    const pod = podConfig('create-race', { linux: { securityContext: sharedPid } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    await startRacer(pod, podSandboxId, 'racer', ['race'], { linux: { securityContext: sharedPid } });
    const log = logOf(pod, 'racer');
    const sawRuntime = () => racerLines(log).some((l) => l.startsWith('OPENED ') && l.includes('crib-runtime'));
    // Every victim's init runs crib-runtime in the pod's PID namespace until it execs the script,
    // which runs crib-runtime again as the container's process.
    for (let i = 0; i < 12 && (i < 5 || !sawRuntime()); i++) {
      try {
        const { containerId } = await d.cri.runtime.CreateContainer({
          podSandboxId, config: container(`victim-${i}`, ['/self-exe.sh'], { linux: { securityContext: sharedPid } }), sandboxConfig: pod,
        });
        await d.cri.runtime.StartContainer({ containerId });
        await waitFor('the victim to exit', async () =>
          (await d.cri.runtime.ContainerStatus({ containerId })).status.state === 'CONTAINER_EXITED', 10_000);
        await d.cri.runtime.RemoveContainer({ containerId });
      } catch {
        break; // the runtime binary is gone: the asserts below say how
      }
    }
    await new Promise((res) => setTimeout(res, 500));
    const lines = racerLines(log);
    expectCopiesIntact();
    expectNoHostFd(lines);
    expect(lines.filter((l) => l.startsWith('OPENED ') && l.includes('crib-runtime'))).not.toEqual([]);
    expect(lines.filter((l) => l.startsWith('WROTE '))).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await expectDaemonServes();
  }, 60_000);

  it('a privileged container of a shared-PID pod going after /proc/1/exe (pod-init) gets no host binary', async () => {
    const pod = podConfig('pod-init-race', { linux: { securityContext: { ...sharedPid, privileged: true } } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    // Privileged: CAP_SYS_PTRACE opens /proc/1/exe of a non-dumpable pod-init all the same, so
    // only the sealed copy stands between it and crib-pinns.
    const racer = await startRacer(pod, podSandboxId, 'racer', ['race', '1'], { linux: { securityContext: { ...sharedPid, privileged: true } } });
    const log = logOf(pod, 'racer');
    await waitFor('the racer to open /proc/1/exe', () => racerLines(log).some((l) => l.startsWith('OPENED 1 ')), 10_000);
    await new Promise((res) => setTimeout(res, 1000));
    const inspect = await d.cri.runtime.ExecSync({ containerId: racer, cmd: ['/exe-racer', 'inspect'], timeout: '10' });
    const seen: string[] = inspect.stdout.toString().trim().split('\n');
    expect(seen.at(-1)).toBe('DONE');
    const lines = racerLines(log);
    expectCopiesIntact();
    expectNoHostFd([...lines, ...seen]);
    expect(lines.filter((l) => l.startsWith('OPENED 1 ') && l.includes('crib-pinns'))).not.toEqual([]);
    expect(lines.filter((l) => l.startsWith('WROTE '))).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await expectDaemonServes();
  }, 60_000);

  it('a CAP_SYS_PTRACE container of a shared-PID pod gets nothing through pod-init (/proc/1)', async () => {
    // CAP_SYS_PTRACE passes the ptrace checks on a non-dumpable pod-init: before pod-init was
    // confined, /proc/1/root was the host's root directory, writable with the container's
    // CAP_DAC_OVERRIDE, and attaching to it gave code execution as host root.
    const sc = { ...sharedPid, capabilities: { addCapabilities: ['SYS_PTRACE'] } };
    const pod = podConfig('ptrace', { linux: { securityContext: sharedPid } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container('tracer', ['/bin/sleep', '100'], { linux: { securityContext: sc } }), sandboxConfig: pod });
    await d.cri.runtime.StartContainer({ containerId });
    const r = await d.cri.runtime.ExecSync({
      containerId, timeout: '10',
      cmd: ['/bin/sh', '-c', 'grep -E "^(Name|Uid|CapPrm|CapEff|CapBnd|NoNewPrivs):" /proc/1/status; echo ROOT; ls -a /proc/1/root/; echo CWD; ls -a /proc/1/cwd/'],
    });
    expect(r.exitCode).toBe(0);
    const out = r.stdout.toString();
    expect(out).toMatch(/^Name:\s+crib-pod-init$/m);
    expect(out).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    for (const set of ['CapPrm', 'CapEff', 'CapBnd']) expect(out).toMatch(new RegExp(`^${set}:\\s+0+$`, 'm'));
    expect(out).toMatch(/^NoNewPrivs:\s+1$/m);
    // An empty, read-only tmpfs: nothing of the host.
    expect(out.split('ROOT\n')[1]).toBe('.\n..\nCWD\n.\n..\n');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  }, 60_000);

  it('no /proc/*/exe a container can open is a host binary, in a shared-PID pod with a created container', async () => {
    const pod = podConfig('inspect', { linux: { securityContext: sharedPid } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container('looker', ['/bin/sleep', '100'], { linux: { securityContext: sharedPid } }), sandboxConfig: pod });
    await d.cri.runtime.StartContainer({ containerId });
    // A created, not started container: nothing of it runs (the runtime's create, and its
    // parked init, are StartContainer's: ptrace-setup.test.ts races those).
    await d.cri.runtime.CreateContainer({ podSandboxId, config: container('parked', ['/bin/true'], { linux: { securityContext: sharedPid } }), sandboxConfig: pod });
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/exe-racer', 'inspect'], timeout: '10' });
    const seen: string[] = r.stdout.toString().trim().split('\n');
    expect(seen.at(-1)).toBe('DONE');
    expectNoHostFd(seen);
    // Exactly one process out of reach (non-dumpable): pod-init (1). No monitor, runtime,
    // daemon or other host process is in the pod's PID namespace at all; every other process
    // runs a file of the image (the racer skips none here: see its EXE lines).
    const denied = seen.filter((l) => l.startsWith('DENIED '));
    expect(denied).toHaveLength(1);
    expect(denied.some((l) => l.startsWith('DENIED 1 '))).toBe(true);
    expect(seen.filter((l) => l.startsWith('EXE ') && !l.endsWith(' /bin/busybox') && !l.endsWith(' /exe-racer'))).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  }, 60_000);

  describe('working_dir through /proc/self/fd (CVE-2024-21626 class)', () => {
    /** "CWD <path>" and "FD <n> <link>" lines of `exe-racer cwd`, and whether the cwd is inside. */
    const parseCwd = (lines: string[]) => ({
      cwd: lines.find((l: string) => l.startsWith('CWD '))?.slice(4),
      fds: lines.filter((l) => l.startsWith('FD ')).map((l) => Number(l.split(' ')[1])).sort((a, b) => a - b),
    });

    it('a container whose working_dir is /proc/self/fd/N fails clearly or starts inside its rootfs', async () => {
      const pod = podConfig('cwd-fd');
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
      for (let n = 3; n <= 20; n++) {
        const name = `cwd-${n}`;
        const created = await d.cri.runtime.CreateContainer({
          podSandboxId, config: container(name, ['/exe-racer', 'cwd'], { workingDir: `/proc/self/fd/${n}` }), sandboxConfig: pod,
        }).catch((e: Error) => e);
        // The runtime's create (where the init changes directory) runs at StartContainer.
        const started = created instanceof Error ? created : await d.cri.runtime.StartContainer({ containerId: created.containerId }).catch((e: Error) => e);
        if (started instanceof Error) {
          expect(started.message).toMatch(/process\.cwd|working_dir/);
          continue;
        }
        const lines = await waitFor('the cwd report', () => {
          const l = racerLines(logOf(pod, name));
          return l.includes('DONE') ? l : undefined;
        });
        const { cwd, fds } = parseCwd(lines);
        expect(cwd?.startsWith('/')).toBe(true);
        expect(fds).toEqual([0, 1, 2]);
      }
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    }, 60_000);

    it('an ExecSync whose cwd the container made a symlink to /proc/self/fd/N fails or stays inside', async () => {
      const pod = podConfig('exec-cwd-fd');
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
      // The container's own process sees only its stdio.
      const plain = await d.cri.runtime.CreateContainer({ podSandboxId, config: container('plain', ['/exe-racer', 'cwd']), sandboxConfig: pod });
      await d.cri.runtime.StartContainer({ containerId: plain.containerId });
      const own = parseCwd(await waitFor('the cwd report', () => {
        const l = racerLines(logOf(pod, 'plain'));
        return l.includes('DONE') ? l : undefined;
      }));
      expect(own).toEqual({ cwd: '/', fds: [0, 1, 2] });
      for (let n = 3; n <= 20; n++) {
        const name = `link-${n}`;
        // The container replaces its working dir with the link; every later exec chdirs into it.
        const { containerId } = await d.cri.runtime.CreateContainer({
          podSandboxId, sandboxConfig: pod,
          config: container(name, ['/bin/sh', '-c', `rmdir /work && ln -s /proc/self/fd/${n} /work && echo linked && exec sleep 100`], { workingDir: '/work' }),
        });
        await d.cri.runtime.StartContainer({ containerId });
        await waitFor('the link', () => racerLines(logOf(pod, name)).includes('linked'));
        const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/exe-racer', 'cwd'], timeout: '10' }).catch((e: Error) => e);
        if (r instanceof Error) {
          expect(r.message).toMatch(/process\.cwd/);
        } else if (r.exitCode !== 0) {
          expect(r.stderr.toString()).toMatch(/process\.cwd/);
        } else {
          const { cwd, fds } = parseCwd(r.stdout.toString().trim().split('\n'));
          expect(cwd?.startsWith('/')).toBe(true);
          expect(fds).toEqual([0, 1, 2]);
        }
        await d.cri.runtime.StopContainer({ containerId, timeout: '0' });
        await d.cri.runtime.RemoveContainer({ containerId });
      }
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    }, 60_000);
  });
});
