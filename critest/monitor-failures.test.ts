// When a container's monitor dies, or the disk under it fills up, the daemon still tells the
// truth, at once, and every call goes on working:
//  - a monitor killed while the daemon runs: within a second the container is EXITED (137, a
//    message naming the dead monitor), its process is killed, and stop/remove clean up all;
//  - a monitor killed while the daemon is down: the restarted daemon finds the same truth;
//  - the state disk (exit files, records) full when a container exits: the exit is reported at
//    once, List/Status keep answering, and once there is room it is written (a restart reads it);
//  - the log disk full: the monitor stays idle, the container runs on, and the log says later
//    how much was dropped.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criProto } from '../src/server/cri-proto.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, trashEntries, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';
import { SmallTmpfs } from '../test-support/small-tmpfs.js';

const run = promisify(execFile);

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!);
  } catch {
    return false;
  }
}

async function cpuTicks(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/**
 * Whether a command line is the daemon deleting a removed writable layer from the snapshotter's
 * trash (sys/remove-tree.ts: `rm -rf --one-file-system -- <root>/snapshots/active/.trash/<key>-<random>`,
 * the key being the container's id), which may outlive the removal.
 */
function isLayerDeletion(cmdline: string): boolean {
  const argv = cmdline.split('\0').filter((a) => a !== '');
  return argv[0]?.split('/').at(-1) === 'rm' && argv.at(-2) === '--' && /\/\.trash\/[^/]+$/.test(argv.at(-1) ?? '');
}

/** Processes whose command line mentions `text`, the deletion of a removed layer aside. */
function processesMentioning(text: string, except: number[]): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p) && !except.includes(Number(p))).filter((p) => {
    try {
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      return cmdline.includes(text) && !isLayerDeletion(cmdline);
    } catch {
      return false;
    }
  }).map(Number);
}

describe('monitors that die and disks that fill up', () => {
  let registry: TestRegistry;
  let image: string;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-monfail-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function runContainer(d: TestDaemon, podConfig: ReturnType<typeof podConfigFactory>, name: string, script: string, extra: Record<string, unknown> = {}) {
    const config = podConfig(name);
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['/bin/sh', '-c', script], logPath: 'c.log', ...extra },
    });
    await d.cri.runtime.StartContainer({ containerId });
    const info = JSON.parse((await d.cri.runtime.ContainerStatus({ containerId, verbose: true })).info.info) as { pid: number; monitorPid: number };
    return { podSandboxId, containerId, pid: info.pid, monitorPid: info.monitorPid, logPath: join(config.logDirectory, 'c.log') };
  }

  describe('a dead monitor', () => {
    let d: TestDaemon;
    let podConfig: ReturnType<typeof podConfigFactory>;
    beforeAll(async () => {
      d = await startDaemon();
      podConfig = podConfigFactory('monfail', join(work, 'logs'));
      await d.cri.image.PullImage({ image: { image } });
    });
    afterAll(async () => {
      await d?.cleanup();
    });

    it('is noticed within a second: the process killed, EXITED with the reason, and stop/remove leave nothing', async () => {
      const events: { containerId: string; containerEventType: string }[] = [];
      const grpcClient = new (criProto().runtime.v1.RuntimeService)(`unix://${d.socket}`, credentials.createInsecure());
      const call = grpcClient.GetContainerEvents({});
      call.on('data', (e: { containerId: string; containerEventType: string }) => events.push(e));
      call.on('error', () => undefined);
      const c = await runContainer(d, podConfig, 'victim', 'exec sleep 100000');
      expect(alive(c.pid) && alive(c.monitorPid)).toBe(true);
      const t0 = Date.now();
      process.kill(c.monitorPid, 'SIGKILL');
      const st = await waitFor('EXITED', async () => {
        const s = (await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status;
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      });
      const noticedMs = Date.now() - t0;
      console.log(`dead monitor noticed and settled in ${noticedMs} ms`);
      expect(noticedMs).toBeLessThan(1000);
      expect(st.exitCode).toBe(137);
      expect(st.reason).toBe('Error');
      expect(st.message).toContain(`crib-monitor (pid ${c.monitorPid}) is gone`);
      expect(st.message).toContain('was still running and was killed');
      expect(alive(c.pid)).toBe(false);
      await waitFor('stopped event', () => events.some((e) => e.containerId === c.containerId && e.containerEventType === 'CONTAINER_STOPPED_EVENT'));
      call.cancel();
      grpcClient.close();

      const t1 = Date.now();
      await d.cri.runtime.StopContainer({ containerId: c.containerId, timeout: '10' });
      await d.cri.runtime.StopPodSandbox({ podSandboxId: c.podSandboxId });
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
      expect(Date.now() - t1).toBeLessThan(5000);
      expect((await d.cri.runtime.ListPodSandbox({})).items).toEqual([]);
      expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
      // The container's remains are deleted in the background after the pod's removal answered,
      // its files last (from the trash).
      await waitFor('the removed container\'s remains to go', () =>
        readdirSync(join(d.state, 'containers')).length === 0 && !readFileSync('/proc/self/mountinfo', 'utf8').includes(c.containerId) &&
        trashEntries(d).length === 0);
      expect(processesMentioning(c.containerId, [d.proc.pid!])).toEqual([]);
    });

    it('lets StopContainer succeed at once when the monitor dies during the stop', async () => {
      // The process ignores SIGTERM; the monitor is killed while StopContainer waits its 30 s.
      const c = await runContainer(d, podConfig, 'during-stop', "trap '' TERM; while true; do sleep 0.2; done");
      const t0 = Date.now();
      const stop = d.cri.runtime.StopContainer({ containerId: c.containerId, timeout: '30' });
      await new Promise((r) => setTimeout(r, 500));
      process.kill(c.monitorPid, 'SIGKILL');
      await stop;
      expect(Date.now() - t0).toBeLessThan(5000);
      const st = (await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status;
      expect(st).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 137 });
      expect(alive(c.pid)).toBe(false);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
    });

    it('killed while the daemon is down: the restarted daemon kills the process and reports EXITED, never RUNNING', async () => {
      const c = await runContainer(d, podConfig, 'offline', 'exec sleep 100000');
      await d.stop('SIGKILL');
      process.kill(c.monitorPid, 'SIGKILL');
      await waitFor('monitor gone', () => !alive(c.monitorPid));
      expect(alive(c.pid)).toBe(true);
      d = await startDaemon({ dir: d.dir });
      // The first answer after the restart is already the truth.
      const st = (await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status;
      expect(st).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 137, reason: 'Error' });
      expect(st.message).toContain(`crib-monitor (pid ${c.monitorPid}) is gone`);
      expect(alive(c.pid)).toBe(false);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
      expect(processesMentioning(c.containerId, [d.proc.pid!])).toEqual([]);
    });
  });

  describe('a full state disk when a container exits', () => {
    let disk: SmallTmpfs;
    let d: TestDaemon;
    let trigger: string;
    beforeAll(async () => {
      // Root and state (records, exit files) on one small disk; logs and the trigger elsewhere.
      disk = await SmallTmpfs.mount(join(work, 'statedisk'), '48m');
      trigger = join(work, 'trigger');
      await mkdir(trigger, { recursive: true });
      d = await startDaemon({ dir: disk.dir });
      await d.cri.image.PullImage({ image: { image } });
    });
    afterAll(async () => {
      await disk?.free();
      await d?.cleanup().catch(() => undefined);
      await disk?.unmount();
    });

    it('reports the exit at once, keeps List and Status answering, and writes the exit once there is room', async () => {
      const podConfig = podConfigFactory('fulldisk', join(work, 'fulldisk-logs'));
      const c = await runContainer(d, podConfig, 'exiter', 'while [ ! -e /trigger/go ]; do sleep 0.05; done; exit 5', {
        mounts: [{ containerPath: '/trigger', hostPath: trigger, propagation: 'PROPAGATION_PRIVATE' }],
      });
      await disk.fill();
      await writeFile(join(trigger, 'go'), '');
      const t0 = Date.now();
      const st = await waitFor('EXITED', async () => {
        const s = (await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status;
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      });
      console.log(`exit reported ${Date.now() - t0} ms after the trigger, with the disk full`);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(st.exitCode).toBe(5);
      // Nothing could be written: no exit file, and the monitor is still there, holding it.
      const cdir = join(d.state, 'containers', c.containerId);
      expect(existsSync(join(cdir, 'exit.json'))).toBe(false);
      expect(alive(c.monitorPid)).toBe(true);
      for (let i = 0; i < 5; i++) {
        const listed = await d.cri.runtime.ListContainers({});
        expect(listed.containers.find((x: { id: string }) => x.id === c.containerId).state).toBe('CONTAINER_EXITED');
        expect((await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status.exitCode).toBe(5);
        expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId: c.podSandboxId })).containersStatuses[0].exitCode).toBe(5);
      }
      await disk.free();
      // The daemon's retry writes its record and lets the monitor go (or the monitor writes its
      // exit file first); either way the exit survives a restart.
      await waitFor('monitor gone', () => !alive(c.monitorPid), 30_000);
      await d.stop();
      d = await startDaemon({ dir: disk.dir });
      const after = (await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status;
      expect(after).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 5 });
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
    }, 120_000);
  });

  describe('a full log disk', () => {
    let disk: SmallTmpfs;
    let d: TestDaemon;
    beforeAll(async () => {
      // Far more than the chatty container writes in the test's time (about 1 MiB/s), so that it
      // cannot fill the disk by itself before fill() and leave free() nothing to free.
      disk = await SmallTmpfs.mount(join(work, 'logdisk'), '64m');
      d = await startDaemon();
      await d.cri.image.PullImage({ image: { image } });
    });
    afterAll(async () => {
      await d?.cleanup();
      await disk?.unmount();
    });

    it('keeps the monitor idle and the container running, then says in the log what was dropped', async () => {
      const podConfig = podConfigFactory('fulllog', disk.dir);
      const c = await runContainer(d, podConfig, 'chatty', 'i=0; while true; do i=$((i+1)); echo "line $i"; done');
      await waitFor('log lines', () => existsSync(c.logPath) && readFileSync(c.logPath, 'utf8').split('\n').length > 100);
      await disk.fill();
      const before = await cpuTicks(c.monitorPid);
      await new Promise((r) => setTimeout(r, 3000));
      const ticks = (await cpuTicks(c.monitorPid)) - before;
      console.log(`monitor CPU with the log disk full: ${ticks} ticks in 3 s`);
      expect(ticks).toBeLessThanOrEqual(30);
      expect((await d.cri.runtime.ContainerStatus({ containerId: c.containerId })).status.state).toBe('CONTAINER_RUNNING');
      expect(alive(c.pid)).toBe(true);
      await disk.free();
      // Rotate as kubelet would, so the test reads what came after the gap.
      await run('mv', [c.logPath, `${c.logPath}.1`]);
      await d.cri.runtime.ReopenContainerLog({ containerId: c.containerId });
      const text = await waitFor('the note and new lines', () => {
        const all = readFileSync(`${c.logPath}.1`, 'utf8') + (existsSync(c.logPath) ? readFileSync(c.logPath, 'utf8') : '');
        return /stderr F crib-monitor: dropped \d+ bytes of output: writing the log file failed: No space left on device\n(.*\n){10}/.test(all) ? all : undefined;
      });
      const note = /crib-monitor: dropped (\d+) bytes/.exec(text)!;
      expect(Number(note[1])).toBeGreaterThan(0);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
    }, 60_000);
  });
});
