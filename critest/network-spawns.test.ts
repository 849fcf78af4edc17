// The pod path runs no `ip` and no `nft` process (issue 14): a daemon whose PATH finds wrappers
// that log every call (then run the real tool) serves RunPodSandbox, PodSandboxStatus,
// StopPodSandbox and RemovePodSandbox of pods without host ports, and the log stays as it was
// once the daemon had set up the node (bridge, forwarding, table: once per daemon). The pod's
// veth, addresses and routes are made over rtnetlink by crib-pinns while it pins the pod's
// namespaces. A pod with hostPorts neither: the crib-pinns process that attaches it has
// crib-hostports install its DNAT rules over nftables netlink (libnftables), and the one that
// deletes its veth has them removed the same way.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { freePort } from '../test-support/registry.js';
import { hostVethName } from '../src/network/veth.js';

describe('the pod path spawns no ip or nft', () => {
  const work = mkdtempSync(join(tmpdir(), 'crib-spawns-'));
  const log = join(work, 'calls.log');
  const podConfig = podConfigFactory('spawns', join(work, 'logs'));
  let d: TestDaemon;

  const calls = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const ports = (bridge: string) =>
    (JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'master', bridge], { encoding: 'utf8' }) || '[]') as { ifname: string }[]).map((l) => l.ifname);

  beforeAll(async () => {
    const bin = join(work, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(log, '');
    for (const tool of ['ip', 'nft']) {
      const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${log}'\nexec '${real}' "$@"\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    d = await startDaemon({ env: { PATH: `${bin}:${process.env.PATH}` }, startTimeoutMs: 60_000 });
    // The node's part: made once, through the wrappers (so they work).
    expect(calls().some((c) => c.startsWith('ip link add name'))).toBe(true);
    expect(calls().some((c) => c.startsWith('nft -f -'))).toBe(true);
  }, 90_000);

  afterAll(async () => {
    await d?.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it('RunPodSandbox, PodSandboxStatus, StopPodSandbox and RemovePodSandbox of a networked pod', async () => {
    const before = calls();
    const shared = { linux: { securityContext: { namespaceOptions: { pid: 'POD' } } } };
    const ids: string[] = [];
    for (const config of [podConfig('plain'), podConfig('shared-pid', shared)]) {
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
      ids.push(podSandboxId);
      const st = (await d.cri.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).status;
      expect(st.state).toBe('SANDBOX_READY');
      expect(st.network.ip.startsWith(d.podCidr.replace(/0\/24$/, ''))).toBe(true);
      // Really attached: a hairpin port of the daemon's bridge, the address inside the pod.
      const veth = hostVethName(podSandboxId);
      expect(ports(d.bridge)).toContain(veth);
      expect(readFileSync(`/sys/class/net/${veth}/brport/hairpin_mode`, 'utf8').trim()).toBe('1');
      const info = JSON.parse((await d.cri.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info) as { netns: string };
      expect(execFileSync('nsenter', [`--net=${info.netns}`, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }))
        .toContain(`${st.network.ip}/24`);
    }
    for (const podSandboxId of ids) {
      await d.cri.runtime.StopPodSandbox({ podSandboxId });
      expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.network.ip).toBe('');
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    }
    // The veths go in the background: wait for them, so their deletes count too.
    await waitFor('the pods\' veths to be deleted', () => ports(d.bridge).length === 0);
    expect(calls().slice(before.length)).toEqual([]);
  });

  it('a pod with hostPorts: its DNAT rules are made and removed without an nft or ip process', async () => {
    const before = calls();
    const [tcp, udp] = [await freePort(), await freePort()];
    const config = podConfig('ported', {
      portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: tcp }, { protocol: 'UDP', containerPort: 53, hostPort: udp, hostIp: '127.0.0.1' }],
    });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const st = (await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status;
    // Really installed (read with the real nft, not through the daemon's PATH).
    const rules = execFileSync('/usr/sbin/nft', ['list', 'table', 'ip', d.nftTable], { encoding: 'utf8' });
    expect(rules).toContain(`tcp dport ${tcp} dnat to ${st.network.ip}:80`);
    expect(rules).toContain(`ip daddr 127.0.0.1 udp dport ${udp} dnat to ${st.network.ip}:53`);
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await waitFor('the pod\'s veth to be deleted', () => ports(d.bridge).length === 0);
    await waitFor('the pod\'s rules to be removed', () => execFileSync('/usr/sbin/nft', ['list', 'table', 'ip', d.nftTable], { encoding: 'utf8' }).match(/hp-|dnat to/) === null);
    expect(calls().slice(before.length)).toEqual([]);
  });
});
