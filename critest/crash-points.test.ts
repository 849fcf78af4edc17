// kill -9 at every crash point (src/lifecycle/crash-point.ts): a daemon armed with the point
// makes the call and dies there; a daemon restarted on the same root must report exactly what
// is on the node (test-support/node-truth.ts: processes, mounts, namespaces, veths, nftables,
// cgroups, IPAM, records), say what the issue asks of each call (a running container is never
// CREATED, a stopped pod never READY, no crib-pod-init outlives its pod), and kubelet's retry of
// the interrupted call must succeed and leave nothing behind once the pod is removed.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_POINTS, type CrashPointName } from '../src/lifecycle/crash-point.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { buildImage, layerFromEntries, pushBusybox, pushImage } from '../test-support/image-builder.js';
import { checkNodeTruth, knownFromDisk, mergeKnown, type KnownIds } from '../test-support/node-truth.js';
import { freePort, startRegistry, type TestRegistry } from '../test-support/registry.js';

/** A loaded machine (several engineers' suites at once) starts a daemon in 10 s or more. */
const startTimeoutMs = 60_000;

type PodConfig = ReturnType<ReturnType<typeof podConfigFactory>>;

/** What a scenario made before the interrupted call, for its checks after the restart. */
interface Made {
  config?: PodConfig;
  podSandboxId?: string;
  containerId?: string;
  /** RemoveContainer answered before the daemon died (it dies deleting the remains). */
  answered?: boolean;
}

interface Scenario {
  /** Made on the armed daemon; never passes the armed point. */
  setup(d: TestDaemon, point: CrashPointName): Promise<Made>;
  /** The call the daemon dies in. */
  call(d: TestDaemon, m: Made, point: CrashPointName): Promise<unknown>;
  /** On the restarted daemon: what it must report, then kubelet's retry. */
  after(d: TestDaemon, m: Made, point: CrashPointName): Promise<void>;
}

describe('crash points: kill -9 anywhere, and the restarted daemon tells the truth', () => {
  let registry: TestRegistry;
  let work: string;
  let dir: string;
  let image: string;
  let image2: string;
  let podConfig: ReturnType<typeof podConfigFactory>;
  let d: TestDaemon | undefined;
  const covered = new Set<string>();

  const ctr = (name: string, script: string, sharedPid = false) => ({
    metadata: { name, attempt: 0 }, image: { image }, command: ['/bin/sh', '-c', script], logPath: `${name}.log`,
    ...(sharedPid ? { linux: { securityContext: { namespaceOptions: { pid: 'POD' } } } } : {}),
  });
  /** A pod with everything a crash can leave half-made: shared PID (a pod init) and a hostPort. */
  const fullPod = async (name: string) => podConfig(name, {
    linux: { securityContext: { namespaceOptions: { pid: 'POD' } } },
    portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: await freePort() }],
  });
  const state = async (d: TestDaemon, containerId: string) => (await d.cri.runtime.ContainerStatus({ containerId })).status;
  const podsWithUid = async (d: TestDaemon, uid: string) => ((await d.cri.runtime.ListPodSandbox({})).items as { id: string; metadata: { uid: string } }[]).filter((p) => p.metadata.uid === uid);
  const runPod = async (d: TestDaemon, config: PodConfig) => (await d.cri.runtime.RunPodSandbox({ config })).podSandboxId;
  const runContainer = async (d: TestDaemon, podSandboxId: string, config: PodConfig, c: ReturnType<typeof ctr>) => {
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, sandboxConfig: config, config: c });
    await d.cri.runtime.StartContainer({ containerId });
    return containerId;
  };

  const runPodScenario: Scenario = {
    setup: async () => ({ config: await fullPod('run') }),
    call: (d, m) => runPod(d, m.config!),
    after: async (d, m) => {
      // RunPodSandbox never answered: the half-made pod is rolled back, its pod init killed.
      expect(await podsWithUid(d, m.config!.metadata.uid)).toEqual([]);
      const podSandboxId = await runPod(d, m.config!);
      expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.state).toBe('SANDBOX_READY');
    },
  };
  const stopPodScenario: Scenario = {
    setup: async (d) => {
      const config = await fullPod('stop');
      const podSandboxId = await runPod(d, config);
      return { config, podSandboxId, containerId: await runContainer(d, podSandboxId, config, ctr('c', 'exec sleep 100000', true)) };
    },
    call: (d, m) => d.cri.runtime.StopPodSandbox({ podSandboxId: m.podSandboxId! }),
    after: async (d, m) => {
      // Finished at start-up: never READY with an IP it no longer has.
      const st = (await d.cri.runtime.PodSandboxStatus({ podSandboxId: m.podSandboxId! })).status;
      expect(st.state).toBe('SANDBOX_NOTREADY');
      expect(st.network?.ip ?? '').toBe('');
      expect((await state(d, m.containerId!)).state).toBe('CONTAINER_EXITED');
      await d.cri.runtime.StopPodSandbox({ podSandboxId: m.podSandboxId! });
    },
  };
  const removePodScenario: Scenario = {
    setup: stopPodScenario.setup,
    call: (d, m) => d.cri.runtime.RemovePodSandbox({ podSandboxId: m.podSandboxId! }),
    after: async (d, m) => {
      expect(await podsWithUid(d, m.config!.metadata.uid)).toEqual([]);
      expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: m.podSandboxId! });
    },
  };
  const createScenario: Scenario = {
    setup: async (d) => {
      const config = podConfig('create');
      return { config, podSandboxId: await runPod(d, config) };
    },
    call: (d, m) => d.cri.runtime.CreateContainer({ podSandboxId: m.podSandboxId!, sandboxConfig: m.config!, config: ctr('c', 'exec sleep 100000') }),
    after: async (d, m) => {
      expect((await d.cri.runtime.ListContainers({ filter: { podSandboxId: m.podSandboxId! } })).containers).toEqual([]);
      const containerId = await runContainer(d, m.podSandboxId!, m.config!, ctr('c', 'exec sleep 100000'));
      expect((await state(d, containerId)).state).toBe('CONTAINER_RUNNING');
    },
  };
  const startScenario: Scenario = {
    setup: async (d) => {
      const config = podConfig('start');
      const podSandboxId = await runPod(d, config);
      const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, sandboxConfig: config, config: ctr('c', 'echo started; exec sleep 100000') });
      return { config, podSandboxId, containerId };
    },
    call: (d, m) => d.cri.runtime.StartContainer({ containerId: m.containerId! }),
    after: async (d, m, point) => {
      const logFile = join(m.config!.logDirectory, 'c.log');
      if (point !== 'StartContainer:after-runtime-start') {
        // The process was never released: parked by the runtime's create, which start-up undoes
        // when the crash came before the pids were recorded (after-runtime-create) and keeps
        // parked when they were (after-intent): CREATED, and kubelet's retry starts it.
        expect((await state(d, m.containerId!)).state).toBe('CONTAINER_CREATED');
        await d.cri.runtime.StartContainer({ containerId: m.containerId! });
      }
      // Started before the crash (or by the retry): RUNNING, never CREATED while it runs.
      expect((await state(d, m.containerId!)).state).toBe('CONTAINER_RUNNING');
      await waitFor('the container\'s output', () => readFileSync(logFile, 'utf8').includes('started'));
    },
  };
  const stopScenario: Scenario = {
    setup: async (d) => {
      const config = podConfig('stopc');
      const podSandboxId = await runPod(d, config);
      const script = "trap 'exit 3' TERM; echo up; while true; do sleep 0.1; done";
      const containerId = await runContainer(d, podSandboxId, config, ctr('c', script));
      await waitFor('the trap set', () => readFileSync(join(config.logDirectory, 'c.log'), 'utf8').includes('up'));
      return { config, podSandboxId, containerId };
    },
    call: (d, m, point) => d.cri.runtime.StopContainer({ containerId: m.containerId!, timeout: point === 'StopContainer:after-signal' ? '30' : '0' }),
    after: async (d, m, point) => {
      const st = await waitFor('EXITED', async () => {
        const s = await state(d, m.containerId!);
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      }, 10_000);
      expect(st.exitCode).toBe(point === 'StopContainer:after-signal' ? 3 : 137);
      await d.cri.runtime.StopContainer({ containerId: m.containerId!, timeout: '0' });
    },
  };
  const exitScenario: Scenario = {
    setup: async (d) => {
      const config = podConfig('exit');
      const podSandboxId = await runPod(d, config);
      return { config, podSandboxId, containerId: await runContainer(d, podSandboxId, config, ctr('c', 'exec sleep 100000')) };
    },
    call: async (d, m, point) => {
      // The exit is recorded (and answered) first; the daemon dies once it is on disk, before
      // the runtime's state of the container is deleted in the background.
      await d.cri.runtime.StopContainer({ containerId: m.containerId!, timeout: '0' });
      m.answered = true;
      if (d.proc.exitCode === null && d.proc.signalCode === null) await new Promise((r) => d.proc.once('exit', r));
      throw new Error(`the daemon died at ${point} after StopContainer answered`);
    },
    after: async (d, m) => {
      // The exit was on disk: EXITED, and start-up deletes the runtime state the crash left.
      const st = await state(d, m.containerId!);
      expect(st.state).toBe('CONTAINER_EXITED');
      expect(st.exitCode).toBe(137);
      await waitFor('the runtime state deleted at start-up', () => !existsSync(join(d.state, 'runtime', m.containerId!)), 10_000);
      // kubelet's retry: StopContainer again (the pod's removal below removes the container).
      await d.cri.runtime.StopContainer({ containerId: m.containerId!, timeout: '0' });
    },
  };
  const removeScenario: Scenario = {
    setup: async (d) => {
      const config = podConfig('removec');
      const podSandboxId = await runPod(d, config);
      const containerId = await runContainer(d, podSandboxId, config, ctr('c', 'exec sleep 100000'));
      await d.cri.runtime.StopContainer({ containerId, timeout: '0' });
      return { config, podSandboxId, containerId };
    },
    call: async (d, m, point) => {
      await d.cri.runtime.RemoveContainer({ containerId: m.containerId! });
      // Past the marker the remains are deleted after the answer: the daemon dies in the
      // background, with the container's dir, mount and writable layer still there.
      if (point === 'RemoveContainer:after-intent') return;
      m.answered = true;
      if (d.proc.exitCode === null && d.proc.signalCode === null) await new Promise((r) => d.proc.once('exit', r));
      throw new Error(`the daemon died at ${point} after RemoveContainer answered`);
    },
    after: async (d, m, point) => {
      expect(m.answered ?? false).toBe(point !== 'RemoveContainer:after-intent');
      expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
      await d.cri.runtime.RemoveContainer({ containerId: m.containerId! });
      // Start-up finished the removal: nothing of the container is left on disk.
      expect(existsSync(join(d.state, 'containers', m.containerId!))).toBe(false);
      expect(existsSync(join(d.root, 'snapshots', 'active', m.containerId!))).toBe(false);
      expect(readdirSync(join(d.root, 'containers')).filter((n) => n.startsWith(m.containerId!))).toEqual([]);
    },
  };
  /** The numbers the counting container has written to its log. */
  const counted = (config: PodConfig) => {
    const logFile = join(config.logDirectory, 'c.log');
    return existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes(' stdout ')).length : 0;
  };
  const checkpointScenario: Scenario = {
    setup: async (d) => {
      const config = podConfig('checkpoint');
      const podSandboxId = await runPod(d, config);
      const containerId = await runContainer(d, podSandboxId, config, ctr('c', 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done'));
      await waitFor('the container counting', () => counted(config) > 3);
      return { config, podSandboxId, containerId };
    },
    call: async (d, m, point) => {
      // No criu runs on this host's kernel (critest/checkpoint.test.ts): the daemon dies before
      // it would, with the container paused.
      await d.cri.runtime.CheckpointContainer({ containerId: m.containerId!, location: join(work, 'checkpoint.tar') }).catch(() => undefined);
      if (d.proc.exitCode === null && d.proc.signalCode === null) await new Promise((r) => d.proc.once('exit', r));
      // Paused: its count stands still while no daemon runs.
      const n = counted(m.config!);
      await sleep(500);
      expect(counted(m.config!), 'the container is paused after the crash').toBe(n);
      throw new Error(`the daemon died at ${point}`);
    },
    after: async (d, m) => {
      // Start-up resumed it: it counts on, and nothing of the checkpoint is left.
      expect((await state(d, m.containerId!)).state).toBe('CONTAINER_RUNNING');
      const n = counted(m.config!);
      await waitFor('the container counting again', () => counted(m.config!) > n + 3, 10_000);
      expect(existsSync(join(d.state, 'containers', m.containerId!, 'checkpoint-work'))).toBe(false);
      expect(existsSync(join(work, 'checkpoint.tar'))).toBe(false);
    },
  };
  const listed = async (d: TestDaemon) => ((await d.cri.image.ListImages({})).images as { repoTags: string[] }[]).some((i) => i.repoTags.includes(image2));
  const pullScenario: Scenario = {
    setup: async () => ({}),
    call: (d) => d.cri.image.PullImage({ image: { image: image2 } }),
    after: async (d, _m, point) => {
      expect(await listed(d)).toBe(point === 'PullImage:after-record');
      await d.cri.image.PullImage({ image: { image: image2 } });
      expect(await listed(d)).toBe(true);
      await d.cri.image.RemoveImage({ image: { image: image2 } });
    },
  };
  const removeImageScenario: Scenario = {
    setup: async (d) => {
      await d.cri.image.PullImage({ image: { image: image2 } });
      return {};
    },
    call: (d) => d.cri.image.RemoveImage({ image: { image: image2 } }),
    after: async (d) => {
      expect(await listed(d)).toBe(false);
      await d.cri.image.RemoveImage({ image: { image: image2 } });
    },
  };

  const scenario = (point: CrashPointName): Scenario => {
    const call = point.slice(0, point.indexOf(':'));
    const byCall: Record<string, Scenario> = {
      RunPodSandbox: runPodScenario, StopPodSandbox: stopPodScenario, RemovePodSandbox: removePodScenario,
      CreateContainer: createScenario, StartContainer: startScenario, StopContainer: stopScenario, ContainerExit: exitScenario,
      RemoveContainer: removeScenario, CheckpointContainer: checkpointScenario, PullImage: pullScenario,
      RemoveImage: removeImageScenario,
    };
    const s = byCall[call];
    if (!s) throw new Error(`no crash-point scenario for ${call}`);
    return s;
  };

  /** Blobs and committed layers on disk: what the images hold, and nothing a crash left. */
  const imageFiles = (d: TestDaemon) => ({
    snapshots: readdirSync(join(d.root, 'snapshots')).filter((n) => /^\d+$/.test(n)).length,
    blobs: readdirSync(join(d.root, 'content', 'sha256')).length,
  });
  let baseline: ReturnType<typeof imageFiles>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-crash-'));
    dir = join(work, 'daemon');
    podConfig = podConfigFactory('crash', join(work, 'logs'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    const other = buildImage({ layers: [await layerFromEntries([{ type: 'file', path: 'crash-points.txt', content: 'a layer of its own' }])] });
    await pushImage(registry, 'library/other', 'v1', other);
    image2 = `${registry.host}/library/other:v1`;
    d = await startDaemon({ dir, startTimeoutMs });
    await d.cri.image.PullImage({ image: { image } });
    baseline = imageFiles(d);
    await d.stop();
    d = undefined;
  }, 120_000);

  // A test that failed half-way leaves its daemon running, and maybe pods: removed and stopped
  // here, or the next test's daemon would find the root locked (or those pods) and every test
  // after it would fail for that.
  afterEach(async () => {
    if (!d) return;
    const items = await d.cri.runtime.ListPodSandbox({}, { deadline: Date.now() + 5000 }).then((r) => r.items, () => []);
    for (const p of items) await d.cri.runtime.RemovePodSandbox({ podSandboxId: p.id }, { deadline: Date.now() + 30_000 }).catch(() => undefined);
    await d.stop();
    d = undefined;
  });

  afterAll(async () => {
    if (d) await d.cleanup();
    else {
      // The daemon dirs (and its network) still need their cleanup: one last clean daemon does it.
      const last = await startDaemon({ dir }).catch(() => undefined);
      await last?.cleanup();
    }
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const point of CRASH_POINTS) {
    it(point, async () => {
      covered.add(point);
      const s = scenario(point);
      const armed = await startDaemon({ dir, env: { CRIB_TEST_HOOKS: '1', CRIB_CRASH_POINT: point }, startTimeoutMs });
      d = armed;
      const made = await s.setup(armed, point);
      const before = knownFromDisk(armed);
      await expect(s.call(armed, made, point)).rejects.toThrow();
      await armed.stop();
      expect(armed.proc.signalCode, `the daemon died at ${point}, not of something else:\n${armed.output().slice(-2000)}`).toBe('SIGKILL');
      let known: KnownIds = mergeKnown(before, knownFromDisk(armed));

      d = await startDaemon({ dir, startTimeoutMs });
      expect(await checkNodeTruth(d, known)).toEqual([]);
      await s.after(d, made, point);
      known = mergeKnown(known, knownFromDisk(d));
      expect(await checkNodeTruth(d, known)).toEqual([]);

      for (const p of (await d.cri.runtime.ListPodSandbox({})).items) {
        await d.cri.runtime.StopPodSandbox({ podSandboxId: p.id });
        await d.cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
      }
      expect(await checkNodeTruth(d, known)).toEqual([]);
      expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
      expect(imageFiles(d)).toEqual(baseline);
      await d.stop();
      d = undefined;
    }, 120_000);
  }

  it('covers every crash point in the code', () => {
    const inCode = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/crashPoint\('([^']+)'\)/g)) inCode.add(m[1]!);
        }
      }
    };
    walk(join(import.meta.dirname, '..', 'src'));
    expect([...inCode].sort()).toEqual([...CRASH_POINTS].sort());
    expect([...covered].sort()).toEqual([...CRASH_POINTS].sort());
  });
});
