// ExecSync under kubelet-like probe load: many probes at once across many containers, while the
// relist (ListContainers, ContainerStatus) runs beside them. Every probe must answer with the
// command's own exit code: a failed readiness or liveness probe marks a healthy pod unready or
// restarts it. (Before the fix, 1-2% failed with INTERNAL "exec in <id> failed (monitor exit 0)":
// the daemon read the helper's output when its process exited, which under load can come before
// the output it wrote has been read from the pipe.)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

const CONTAINERS = Number(process.env.CRIB_EXEC_LOAD_CONTAINERS ?? 50);
const CONCURRENT = Number(process.env.CRIB_EXEC_LOAD_CONCURRENT ?? 150);
const ROUNDS = Number(process.env.CRIB_EXEC_LOAD_ROUNDS ?? 8);

describe(`ExecSync under load (${CONCURRENT} at once across ${CONTAINERS} containers, ${ROUNDS} rounds)`, () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  const containers: string[] = [];

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-exec-load-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    const image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon({ logLevel: 'info' });
    await d.cri.image.PullImage({ image: { image } });
    const podConfig = podConfigFactory('load', logDir);
    for (let i = 0; i < CONTAINERS; i++) {
      const config = podConfig(`load-${i}`);
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
      const { containerId } = await d.cri.runtime.CreateContainer({
        podSandboxId, sandboxConfig: config,
        config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
      });
      await d.cri.runtime.StartContainer({ containerId });
      containers.push(containerId);
    }
  }, 600_000);

  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  }, 600_000);

  it('answers every probe with its exit code, none with INTERNAL', async () => {
    const failures: string[] = [];
    let done = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const relist = (async () => {
        for (let i = 0; i < 5; i++) {
          await d.cri.runtime.ListContainers({});
          await Promise.all(containers.slice(0, 10).map((containerId) => d.cri.runtime.ContainerStatus({ containerId })));
        }
      })();
      await Promise.all(Array.from({ length: CONCURRENT }, async (_, i) => {
        const containerId = containers[(round * CONCURRENT + i) % containers.length]!;
        // Alternate a bare `true` with a probe that prints, as HTTP/exec probes do.
        const cmd = i % 2 === 0 ? ['true'] : ['sh', '-c', 'echo ready; exit 3'];
        try {
          const r = await d.cri.runtime.ExecSync({ containerId, cmd, timeout: '60' });
          const want = i % 2 === 0 ? { exitCode: 0, out: '' } : { exitCode: 3, out: 'ready\n' };
          if (r.exitCode !== want.exitCode || r.stdout.toString() !== want.out) {
            failures.push(`${containerId.slice(0, 12)}: exit ${r.exitCode}, stdout ${JSON.stringify(r.stdout.toString())}`);
          }
        } catch (err) {
          const e = err as { code?: number; details?: string };
          failures.push(`${containerId.slice(0, 12)}: code ${e.code}: ${e.details}`);
        }
        done++;
      }));
      await relist;
    }
    console.log(`ExecSync under load: ${done} calls, ${failures.length} failed${failures.length ? `:\n  ${failures.slice(0, 10).join('\n  ')}` : ''}`);
    expect(done).toBe(CONCURRENT * ROUNDS);
    expect(failures).toEqual([]);
  }, 900_000);
});
