// Benchmark (not a test): ExecSync, and the container lifecycle around it, A/B between two builds
// (issue 14: kubelet's exec probes are a node's most frequent runtime calls, one per probed
// container every few seconds; each starts crib-monitor, crib-runtime and the command).
//   npx tsx bench/exec-ab.ts   (BENCH_N=20 rounds; BENCH_EXECS=10 ExecSyncs a round;
//                               BENCH_BASE=/path/to/another/checkout, built: its daemon runs
//                               beside this one's, rounds alternating which goes first)
// A round, per daemon: a pod and a busybox container are created and started, BENCH_EXECS
// ExecSyncs of /bin/true run one after another, then the container is stopped (timeout 0) and
// removed and the pod goes. Without BENCH_BASE it times this checkout alone.
import { runLifecycleAB } from './lifecycle-ab.js';

const EXECS = Number(process.env.BENCH_EXECS ?? 10);

await runLifecycleAB({
  ops: ['CreateContainer', 'StartContainer', 'ExecSync', 'StopContainer', 'RemoveContainer'] as const,
  title: `a pod, its container and ${EXECS} ExecSyncs of /bin/true per round`,
  async round(d, image, n, time) {
    const rt = d.cri.runtime;
    const config = { metadata: { name: `ex-${n}`, namespace: 'bench', uid: `ex-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
    const { podSandboxId } = await rt.RunPodSandbox({ config });
    const { containerId } = await time('CreateContainer', () => rt.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
    }));
    await time('StartContainer', () => rt.StartContainer({ containerId }));
    for (let i = 0; i < EXECS; i++) {
      const r = await time('ExecSync', () => rt.ExecSync({ containerId, cmd: ['/bin/true'], timeout: 10 }));
      if (r.exitCode !== 0) throw new Error(`ExecSync /bin/true exited ${r.exitCode}: ${r.stderr.toString()}`);
    }
    await time('StopContainer', () => rt.StopContainer({ containerId, timeout: 0 }));
    await time('RemoveContainer', () => rt.RemoveContainer({ containerId }));
    await rt.StopPodSandbox({ podSandboxId });
    await rt.RemovePodSandbox({ podSandboxId });
  },
});
