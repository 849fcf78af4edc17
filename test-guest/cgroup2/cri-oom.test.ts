// OOM kills on cgroup v2, as kubelet sees them: ContainerStatus.reason "OOMKilled" when the
// kernel's OOM killer struck inside the container's memory cgroup — counted by memory.events
// "oom_kill" — whether the victim was the container's init or a child of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, guest, type Guest } from '../support.js';

describe('OOM kills reported from memory.events', () => {
  let g: Guest;
  let pod: { podSandboxId: string; config: Record<string, any> };
  const limited = { linux: { resources: { memoryLimitInBytes: String(32 * MiB) } } };
  // dd's buffer is its block size, every page written: 64 MiB cannot fit under 32 MiB.
  const hog = 'dd if=/dev/zero of=/dev/null bs=64M count=1';

  beforeAll(async () => {
    g = guest('oom');
    pod = await g.runPod('oom');
  });
  afterAll(async () => {
    await g?.cleanup();
  });

  it('reports OOMKilled when the container\'s init is killed', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'init', `exec ${hog}`, limited);
    const st = await g.waitExited(id);
    expect(st.reason).toBe('OOMKilled');
    expect(st.exitCode).toBe(137);
  });

  it('reports OOMKilled when a child is killed and init exits on its own', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'child', `${hog}; echo "dd: $?"; exit 3`, limited);
    const st = await g.waitExited(id);
    expect(st.reason).toBe('OOMKilled');
    expect(st.exitCode).toBe(3);
  });

  it('reports a container that stayed under its limit as Completed', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'fits', 'dd if=/dev/zero of=/dev/null bs=8M count=1', limited);
    const st = await g.waitExited(id);
    expect(st.exitCode).toBe(0);
    expect(st.reason).toBe('Completed');
  });
});
