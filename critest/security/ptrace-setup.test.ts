// A container with CAP_SYS_PTRACE in a shared-PID pod sees every process of the pod, and
// CAP_SYS_PTRACE passes the ptrace checks even on a non-dumpable process. crib-runtime's own
// processes enter that PID namespace too: the child of every exec (ExecSync: kubelet's probes)
// and the init of every container created in the pod. If one of them is visible there while it
// still has the host's mount namespace, the host's root or cwd, or more capabilities than the
// container gets, the attacker can take it over (PTRACE_SEIZE, process_vm_writev) and own the host.
//
// The racer (support/ptrace-racer.c) seizes every new process of the pod at once and looks
// through it; the test drives ExecSyncs and container creates meanwhile, then checks that no
// process it got hold of ever showed anything of the host: a marker file only the host has
// through /proc/<pid>/root or /proc/<pid>/cwd, the host's mount namespace, or capabilities beyond
// the racer's own (the container's set plus SYS_PTRACE). It must also have got hold of crib-runtime
// itself (the parked init of each create), so a pass is not a race that never ran.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, pushImage } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const run = promisify(execFile);
const RACER_SRC = fileURLToPath(new URL('./support/ptrace-racer.c', import.meta.url));

interface Proc { line: string; pid: number; comm: string; beyond: boolean; seize: string; vm: string; mnt: string; root: string; cwd: string }

function racerProcs(logPath: string): Proc[] {
  if (!existsSync(logPath)) return [];
  return readFileSync(logPath, 'utf8').split('\n')
    .map((l) => /^\S+ stdout F (PROC .*)$/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined)
    .map((line) => {
      const f = Object.fromEntries(line.split(' ').slice(2).map((kv) => kv.split('=') as [string, string]));
      return { line, pid: Number(line.split(' ')[1]), comm: f.comm!, beyond: f.beyond === '1', seize: f.seize!, vm: f.vm!, mnt: f.mnt!, root: f.root!, cwd: f.cwd! };
    });
}

/** What must never happen: a process that shows the host, or hands us capabilities we lack. */
const reachedHost = (p: Proc) => p.root === 'host' || p.cwd === 'host' || p.mnt === 'host'
  || ((p.seize === 'ok' || p.vm === 'ok') && p.beyond);

describe('a CAP_SYS_PTRACE container of a shared-PID pod cannot take over crib-runtime during setup', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let tmp: string;
  let logDir: string;
  let image: string;
  let marker: string;
  const podConfig = (name: string) => podConfigFactory('ptrace-setup', logDir)(name, { linux: { securityContext: { namespaceOptions: { pid: 'POD' } } } });
  const sharedPid = { namespaceOptions: { pid: 'POD' } };
  const container = (name: string, command: string[], sc: Record<string, unknown> = sharedPid) => ({
    metadata: { name, attempt: 0 }, image: { image }, command, logPath: `${name}.log`, linux: { securityContext: sc },
  });

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'crib-ptrace-'));
    logDir = join(tmp, 'logs');
    // A file only the host has: seen through a process's root or cwd, that process is the host's.
    marker = join(tmp, `host-marker-${randomBytes(6).toString('hex')}`);
    await writeFile(marker, 'host\n');
    await mkdir(join(tmp, 'bin'));
    const racer = join(tmp, 'bin', 'ptrace-racer');
    await run('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', racer, RACER_SRC]);
    const mtime = new Date('2024-01-01T00:00:00Z');
    const layer = await busyboxRootfsLayer({
      extra: [{ type: 'file', path: 'ptrace-racer', content: await readFile(racer), mode: 0o755, mtime }],
    });
    registry = await startRegistry();
    await pushImage(registry, 'security/ptrace-racer', 'latest', buildImage({ layers: [layer], config: { Cmd: ['/bin/sh'] } }));
    image = `${registry.host}/security/ptrace-racer:latest`;
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image } });
  }, 120_000);

  afterEach(async () => {
    if (!d) return;
    for (const p of (await d.cri.runtime.ListPodSandbox({})).items) await d.cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
  }, 60_000);

  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }, 120_000);

  /** The racer, CAP_SYS_PTRACE added to the default set, in the pod's PID namespace. */
  async function startRacer(pod: { logDirectory: string }, podSandboxId: string): Promise<string> {
    const sc = { ...sharedPid, capabilities: { addCapabilities: ['SYS_PTRACE'] } };
    const args = ['/ptrace-racer', 'race', marker.slice(1), readlinkSync('/proc/self/ns/mnt')];
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container('racer', args, sc), sandboxConfig: pod });
    await d.cri.runtime.StartContainer({ containerId });
    await waitFor('the racer to start', () => readFileSync(join(pod.logDirectory, 'racer.log'), { encoding: 'utf8', flag: 'a+' }).includes('RACING'));
    return containerId;
  }

  /** The racer's findings once it has looked at everything so far. */
  async function findings(pod: { logDirectory: string }): Promise<Proc[]> {
    await new Promise((res) => setTimeout(res, 500));
    return racerProcs(join(pod.logDirectory, 'racer.log'));
  }

  it('ExecSync into the pod\'s containers (exec probes) never exposes the host', async () => {
    const pod = podConfig('exec');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    const racer = await startRacer(pod, podSandboxId);
    const { containerId: victim } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container('victim', ['/bin/sleep', '1000']), sandboxConfig: pod });
    await d.cri.runtime.StartContainer({ containerId: victim });
    for (let i = 0; i < 40; i++) {
      const r = await d.cri.runtime.ExecSync({ containerId: i % 2 ? racer : victim, cmd: ['/bin/true'], timeout: '10' });
      expect(r.exitCode).toBe(0);
    }
    const procs = await findings(pod);
    const crib = procs.filter((p) => p.comm === 'crib-runtime');
    console.log(`exec: the racer looked at ${procs.length} processes, seized ${procs.filter((p) => p.seize === 'ok').length}, `
      + `${crib.length} of them crib-runtime before its execve (${crib.filter((p) => p.seize === 'ok').length} seized)`);
    expect(procs.filter(reachedHost).map((p) => p.line)).toEqual([]);
    // It caught crib-runtime's exec process before its execve, at least once in 40: the attack
    // was real, and what it held was the container's.
    expect(crib.filter((p) => p.seize === 'ok').length).toBeGreaterThan(0);
  }, 90_000);

  it('creating containers in the pod never exposes the host; the racer does get hold of crib-runtime', async () => {
    const pod = podConfig('create');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod });
    await startRacer(pod, podSandboxId);
    for (let i = 0; i < 10; i++) {
      const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container(`victim-${i}`, ['/bin/true']), sandboxConfig: pod });
      await d.cri.runtime.StartContainer({ containerId });
      await waitFor('the victim to exit', async () =>
        (await d.cri.runtime.ContainerStatus({ containerId })).status.state === 'CONTAINER_EXITED', 10_000);
      await d.cri.runtime.RemoveContainer({ containerId });
    }
    const procs = await findings(pod);
    const crib = procs.filter((p) => p.comm === 'crib-runtime');
    console.log(`create: the racer looked at ${procs.length} processes, seized ${procs.filter((p) => p.seize === 'ok').length}, `
      + `${crib.length} of them crib-runtime (${crib.filter((p) => p.seize === 'ok').length} seized)`);
    expect(procs.filter(reachedHost).map((p) => p.line)).toEqual([]);
    // It had crib-runtime in its hands (each create's init waits, parked, in the pod): so the
    // attack was real, and what it found there was the container's, not the host's.
    expect(crib.filter((p) => p.seize === 'ok').length).toBeGreaterThan(0);
  }, 90_000);
});
