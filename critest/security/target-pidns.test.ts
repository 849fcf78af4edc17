// kubectl debug --target (PID namespace mode TARGET) against pid reuse. crib checks that the
// target container's init is alive, then prepares the new container's rootfs, and only then does
// the runtime join the namespace. Were it to join by /proc/<pid>/ns/pid, a target that exited in
// between and whose pid went to a host process would put the debug container in the host's PID
// namespace, seeing (and, with its capabilities, signalling) every process of the node.
//
// The runtime's create, which joins the namespace, runs at StartContainer (CreateContainer only
// checks that the target runs). The attack: a test hook stalls the start just after its check of
// the target; in the stall the target's init is killed and its pid handed, through
// /proc/sys/kernel/ns_last_pid, to a process of this host. The start must then fail with
// NOT_FOUND naming the target, and nothing of the debug container may run.
import { status } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { checkNodeTruth } from '../../test-support/node-truth.js';
import { removeCgroupParent, startDaemon, waitFor, type TestDaemon } from '../../test-support/daemon.js';
import { pushBusybox } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const STALL_MS = 6000;

/** The host pid of the one process whose command line is exactly `words`. */
function pidOf(words: string[]): number | undefined {
  const want = `${words.join('\0')}\0`;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8') === want) return Number(e);
    } catch { /* gone */ }
  }
  return undefined;
}

/** Starts a host process with exactly pid `pid` (the next pid the kernel hands out is ns_last_pid + 1). */
async function squat(pid: number): Promise<ChildProcess> {
  for (let attempt = 0; attempt < 200; attempt++) {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const c = spawn('sleep', ['1000'], { stdio: 'ignore' });
    await new Promise((resolve, reject) => c.once('spawn', resolve).once('error', reject));
    if (c.pid === pid) return c;
    // Another process of this busy machine took it first: try again.
    c.kill('SIGKILL');
    await new Promise((resolve) => c.once('exit', resolve));
  }
  throw new Error(`could not get pid ${pid} for a host process in 200 tries`);
}

describe('PID namespace TARGET: a target that exits before the join', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let dir: string;
  let image: string;
  let squatter: ChildProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-target-pidns-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'security/target', 'latest');
    image = `${registry.host}/security/target:latest`;
    d = await startDaemon({ env: { CRIB_TEST_HOOKS: '1', CRIB_TEST_TARGET_PIDNS_STALL_MS: String(STALL_MS) } });
    await d.cri.image.PullImage({ image: { image } });
  }, 120_000);
  afterAll(async () => {
    squatter?.kill('SIGKILL');
    if (d) {
      for (const p of (await d.cri.runtime.ListPodSandbox({})).items) await d.cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
      await d.cleanup();
    }
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
    await removeCgroupParent('crib');
  });

  const container = (name: string, script: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c', script],
    ...extra,
  });

  it('never joins the namespace of a process that took the target\'s pid: NOT_FOUND naming the target', async () => {
    const podConfig = podConfigFactory('target', join(dir, 'logs'))('target');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig });
    const mark = String(40_000 + Math.floor(Math.random() * 20_000));
    const app = (await d.cri.runtime.CreateContainer({ podSandboxId, config: container('app', `exec sleep ${mark}`) })).containerId;
    await d.cri.runtime.StartContainer({ containerId: app });
    const pid = await waitFor('the target\'s init on the host', async () => pidOf(['sleep', mark]));

    const { containerId: debuggerId } = await d.cri.runtime.CreateContainer({
      podSandboxId,
      config: container('debugger', 'cat /proc/1/cmdline; exec sleep 1000', {
        linux: { securityContext: { namespaceOptions: { network: 'POD', ipc: 'POD', pid: 'TARGET', targetId: app } } },
      }),
    });
    const start = d.cri.runtime.StartContainer({ containerId: debuggerId })
      .then(() => debuggerId, (e: { code: number; details: string }) => e);
    // The target was checked and found running; now it exits and a host process gets its pid.
    await waitFor('the start to pass the target check', async () => d.output().includes('stalling after the TARGET PID namespace check') || undefined);
    process.kill(pid, 'SIGKILL');
    await waitFor('the target\'s init to be reaped', async () => !existsSync(`/proc/${pid}`) || undefined);
    squatter = await squat(pid);
    // The pid now names a process in this host's PID namespace.
    expect(readlinkSync(`/proc/${pid}/ns/pid`)).toBe(readlinkSync('/proc/self/ns/pid'));

    const err = await start;
    if (typeof err === 'string') {
      // The attack worked: show whose PID namespace the debug container is in.
      const seen = await d.cri.runtime.ExecSync({ containerId: err, cmd: ['/bin/sh', '-c', 'tr "\\0" " " < /proc/1/cmdline'], timeout: '10' });
      expect.fail(`the debug container was created, in the PID namespace of the process that took pid ${pid}: its pid 1 is "${seen.stdout.toString().trim()}"`);
    }
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain(`container ${app} exited before the new container could join its PID namespace`);
    // Nothing of the refused start runs (the container stays created, without a process), and
    // the host process was not touched.
    const st = await d.cri.runtime.ContainerStatus({ containerId: debuggerId, verbose: true });
    expect(st.status.state).toBe('CONTAINER_CREATED');
    expect(JSON.parse(st.info.info).pid).toBe(0);
    expect(squatter.exitCode).toBeNull();
    // The squatter holds the exited target's pid: gone, it no longer passes for the target.
    squatter.kill('SIGKILL');
    await new Promise((resolve) => squatter!.once('exit', resolve));
    expect(await checkNodeTruth(d)).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  }, 60_000);
});
