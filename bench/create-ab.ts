// Benchmark (not a test): CreateContainer and StartContainer, A/B between two builds (issue 14:
// the runtime's create moved from CreateContainer to StartContainer, as containerd has it).
//   npx tsx bench/create-ab.ts   (BENCH_N=20 rounds; BENCH_BASE=/path/to/another/checkout, built:
//                                 its daemon runs beside this one's, rounds alternating which goes
//                                 first, so both see the same background load)
// A round, per daemon, the pod lifecycle bench/ops.ts times: RunPodSandbox, CreateContainer,
// StartContainer, StopContainer (timeout 0), RemoveContainer, StopPodSandbox, RemovePodSandbox;
// CreateContainer, StartContainer and their sum (what a pod's start waits for) are reported.
// Without BENCH_BASE it times this checkout alone.
import { runLifecycleAB } from './lifecycle-ab.js';

await runLifecycleAB({
  ops: ['CreateContainer', 'StartContainer', 'Create+Start'] as const,
  title: 'a pod and its container per round',
  async round(d, image, n, time, record) {
    const rt = d.cri.runtime;
    const config = { metadata: { name: `cr-${n}`, namespace: 'bench', uid: `cr-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
    const { podSandboxId } = await rt.RunPodSandbox({ config });
    const t0 = process.hrtime.bigint();
    const { containerId } = await time('CreateContainer', () => rt.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
    }));
    await time('StartContainer', () => rt.StartContainer({ containerId }));
    record('Create+Start', Number(process.hrtime.bigint() - t0) / 1e6);
    await rt.StopContainer({ containerId, timeout: 0 });
    await rt.RemoveContainer({ containerId });
    await rt.StopPodSandbox({ podSandboxId });
    await rt.RemovePodSandbox({ podSandboxId });
  },
});
