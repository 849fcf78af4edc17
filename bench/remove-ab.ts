// Benchmark (not a test): RemoveContainer and RemovePodSandbox, A/B between two builds.
//   npx tsx bench/remove-ab.ts   (BENCH_N=20 rounds; BENCH_BASE=/path/to/another/checkout, built:
//                                 its daemon runs beside this one's, rounds alternating which goes
//                                 first, so both see the same background load)
// A round, per daemon, the pod lifecycle bench/ops.ts times: RunPodSandbox, CreateContainer,
// StartContainer, StopContainer (timeout 0), RemoveContainer, StopPodSandbox, RemovePodSandbox;
// the removals are reported, and RunPodSandbox and the stops beside them. Without BENCH_BASE it times this
// checkout alone. BENCH_REMOVE_AFTER_MS (default 0): a pause after StopContainer, as kubelet
// removes a dead container some time after its exit rather than at once.
import { runLifecycleAB } from './lifecycle-ab.js';

const REMOVE_AFTER_MS = Number(process.env.BENCH_REMOVE_AFTER_MS ?? 0);

await runLifecycleAB({
  ops: ['RunPodSandbox', 'StopContainer', 'RemoveContainer', 'StopPodSandbox', 'RemovePodSandbox'] as const,
  title: REMOVE_AFTER_MS ? `RemoveContainer ${REMOVE_AFTER_MS} ms after StopContainer` : 'RemoveContainer at once after StopContainer',
  async round(d, image, n, time) {
    const rt = d.cri.runtime;
    const config = { metadata: { name: `rm-${n}`, namespace: 'bench', uid: `rm-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
    const { podSandboxId } = await time('RunPodSandbox', () => rt.RunPodSandbox({ config }));
    const { containerId } = await rt.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
    });
    await rt.StartContainer({ containerId });
    await time('StopContainer', () => rt.StopContainer({ containerId, timeout: 0 }));
    if (REMOVE_AFTER_MS > 0) await new Promise((r) => setTimeout(r, REMOVE_AFTER_MS));
    await time('RemoveContainer', () => rt.RemoveContainer({ containerId }));
    await time('StopPodSandbox', () => rt.StopPodSandbox({ podSandboxId }));
    await time('RemovePodSandbox', () => rt.RemovePodSandbox({ podSandboxId }));
  },
});
