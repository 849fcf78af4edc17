// After many pods with containers come and go, nothing stays behind: mounts, pinned namespaces,
// veths, IP allocations, nftables chains, cgroups, monitor processes.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonMounts, removeCgroupParent, startDaemon, trashEntries, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

const run = promisify(execFile);
const PODS = Number(process.env.CRIB_LEAK_PODS ?? 200);

function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text)) pids.push(Number(p));
    } catch {
      /* exited */
    }
  }
  return pids;
}

describe(`creating and removing ${PODS} pods with containers`, () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let image: string;
  beforeAll(async () => {
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await removeCgroupParent('crib-leaktest');
  });

  it('leaves no mounts, namespaces, veths, addresses, rules, cgroups or processes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < PODS; i++) {
      const config = {
        metadata: { name: `leak-${i}`, namespace: 'default', uid: `leak-uid-${i}`, attempt: 0 },
        linux: { cgroupParent: '/crib-leaktest' },
        portMappings: i % 10 === 0 ? [{ protocol: 'TCP', containerPort: 80, hostPort: 30000 + i }] : [],
      };
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
      const { containerId } = await d.cri.runtime.CreateContainer({
        podSandboxId,
        config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '1000'] },
      });
      await d.cri.runtime.StartContainer({ containerId });
      ids.push(containerId);
      await d.cri.runtime.StopPodSandbox({ podSandboxId });
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    }
    expect((await d.cri.runtime.ListPodSandbox({})).items).toEqual([]);
    expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);

    // The last pod's container's remains (rootfs mount, dir, writable layer), its veth and then
    // its address are released in the background after the removal answered.
    const mounts = () => daemonMounts(d);
    const allocations = () => Object.keys((JSON.parse(readFileSync(join(d.root, 'network', 'ipam.json'), 'utf8')) as { allocations?: Record<string, unknown> }).allocations ?? {});
    await waitFor('the last pod\'s remains to go', () => mounts().length === 0 && readdirSync(join(d.state, 'containers')).length === 0 &&
      readdirSync(join(d.root, 'snapshots', 'active')).filter((n) => !n.startsWith('.')).length === 0 && allocations().length === 0 &&
      trashEntries(d).length === 0);
    expect(mounts()).toEqual([]);
    expect(readdirSync(join(d.state, 'pods'))).toEqual([]);
    expect(readdirSync(join(d.state, 'containers'))).toEqual([]);
    const ports = (await run('ip', ['-o', 'link', 'show', 'master', d.bridge])).stdout.trim();
    expect(ports).toBe('');
    expect(allocations()).toEqual([]);
    const rules = (await run('nft', ['list', 'table', 'ip', d.nftTable])).stdout;
    expect(rules).not.toMatch(/chain hp-/);
    for (const id of ids) {
      for (const ctl of ['memory', 'pids', 'cpu']) expect(existsSync(`/sys/fs/cgroup/${ctl}/crib-leaktest/crib-${id}`)).toBe(false);
    }
    expect(processesMentioning(d.dir).filter((p) => p !== d.proc.pid)).toEqual([]);
    // Writable layers are gone too.
    expect(readdirSync(join(d.root, 'snapshots', 'active')).filter((n) => !n.startsWith('.'))).toEqual([]);
  }, 600_000);
});
