// Pod networking end to end, through the CRI only: the built-in bridge network in dual stack
// (pod_cidr_v6), the CNI backend with the reference plugins (bridge + host-local; no portmap or
// ipMasq, whose iptables state is shared host-wide), DEL after the CNI config changed, and a CNI
// backend with no network configured. Every daemon, bridge, nftables table and host-local dir is
// private to this file (names and subnets from the pid and random bytes) and removed after.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status as grpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonMounts, startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { curl } from '../test-support/netns-tools.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

const run = promisify(execFile);
const CNI_BIN_DIR = '/usr/lib/cni';
const rnd = randomBytes(4);
const tag = `${process.pid.toString(16)}${rnd.toString('hex').slice(0, 4)}`;
// A unique ULA /64 per run, from random bytes and the pid, written the way crib prints addresses
// (no leading zeros, no zero group) so that prefix comparisons on its output hold.
const V6_PREFIX = [
  `fd${rnd.toString('hex', 0, 1)}`,
  (0x1000 + (rnd.readUInt16BE(1) % 0xf000)).toString(16),
  (0x1000 | (process.pid & 0xfff)).toString(16),
  (0x10 + (rnd[3]! % 0xf0)).toString(16),
].join(':');
const POD_CIDR_V6 = `${V6_PREFIX}::/64`;
// Outside the test daemons' 10.200-249.x.0/24 and the CNI unit test's 10.250.x.0/24.
const CNI_NET = `10.251.${1 + (rnd[0]! % 250)}`;
const CNI_BRIDGE = `cribn${tag}`.slice(0, 15);
const CNI_NETWORK = `crib-e2e-${tag}`;
// The network that only appears after the daemon started.
const LATE_NET = `10.252.${1 + (rnd[1]! % 250)}`;
const LATE_BRIDGE = `cribm${tag}`.slice(0, 15);
const LATE_NETWORK = `crib-e2e-late-${tag}`;

const PEER_SERVER =
  'mkdir -p /tmp/www/cgi-bin && cp /var/www/index.html /tmp/www/ && ' +
  `printf '#!/bin/sh\\necho "Content-Type: text/plain"\\necho\\necho "$REMOTE_ADDR"\\n' > /tmp/www/cgi-bin/peer && ` +
  'chmod 755 /tmp/www/cgi-bin/peer && exec httpd -f -p 8080 -h /tmp/www';

interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A conflist for the reference bridge plugin with host-local IPAM (no ipMasq: no iptables rules). */
async function writeBridgeConflist(path: string, o: { network: string; bridge: string; net: string; dataDir: string }): Promise<void> {
  await writeFile(
    path,
    JSON.stringify({
      cniVersion: '1.0.0',
      name: o.network,
      plugins: [
        {
          type: 'bridge',
          bridge: o.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: `${o.net}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: o.dataDir },
        },
      ],
    }),
  );
}

async function networkReady(d: TestDaemon): Promise<{ status: boolean; reason: string; message: string }> {
  const { conditions } = (await d.cri.runtime.Status({})).status;
  return conditions.find((c: { type: string }) => c.type === 'NetworkReady');
}

async function hostLinks(): Promise<string> {
  return (await run('ip', ['-o', 'link'])).stdout;
}

async function bridgePorts(bridge: string): Promise<string[]> {
  const out = await run('ip', ['-j', 'link', 'show', 'master', bridge]).then((r) => r.stdout, () => '[]');
  return (JSON.parse(out || '[]') as { ifname: string }[]).map((l) => l.ifname);
}

describe('pod networking through the CRI', () => {
  let registry: TestRegistry;
  let base: string;
  let image: string;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), `crib-net-e2e-${process.pid}-`));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
  });
  afterAll(async () => {
    await registry?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  const podConfig = (name: string, extra: Record<string, unknown> = {}) => podConfigFactory('net-e2e', join(base, 'logs'))(name, extra);

  /**
   * A running pod whose one container serves HTTP on port 8080 (IPv4 and IPv6): / is busybox's
   * index page, /cgi-bin/peer answers with the client address the server saw ("[addr]").
   */
  async function webPod(d: TestDaemon, name: string, extra: Record<string, unknown> = {}) {
    const config = podConfig(name, extra);
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId,
      sandboxConfig: config,
      config: {
        metadata: { name: 'web', attempt: 0 },
        image: { image },
        command: ['/bin/sh', '-c'],
        args: [PEER_SERVER],
        logPath: 'web.log',
      },
    });
    await d.cri.runtime.StartContainer({ containerId });
    const st = await d.cri.runtime.PodSandboxStatus({ podSandboxId, verbose: true });
    const info = JSON.parse(st.info.info) as { netns: string; network: { hostInterface?: string } };
    return {
      podSandboxId,
      containerId,
      ip: st.status.network.ip as string,
      additionalIps: (st.status.network.additionalIps as { ip: string }[]).map((a) => a.ip),
      netns: info.netns,
      hostInterface: info.network.hostInterface,
    };
  }

  async function exec(d: TestDaemon, containerId: string, cmd: string[]): Promise<ExecResult> {
    const r = await d.cri.runtime.ExecSync({ containerId, cmd, timeout: '10' });
    return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  /** GET url from inside a container, retried until the server in the other pod answers (no
   * wget -T: it segfaults in this static busybox; ExecSync's timeout bounds a hung try). */
  function httpGet(d: TestDaemon, containerId: string, url: string): Promise<string> {
    return waitFor(`${url} from container ${containerId.slice(0, 12)}`, async () => {
      const r = await exec(d, containerId, ['wget', '-q', '-O', '-', url]);
      if (r.exitCode !== 0) throw new Error(`wget exited with ${r.exitCode}: ${r.stderr.trim()}`);
      return r.stdout;
    }, 30_000);
  }

  /** The host-side ifindex of the container's eth0 (the peer of its veth). */
  async function hostIfindex(d: TestDaemon, containerId: string): Promise<string> {
    const r = await exec(d, containerId, ['cat', '/sys/class/net/eth0/iflink']);
    expect(r.exitCode).toBe(0);
    return r.stdout.trim();
  }

  const hasLinkIndex = (links: string, index: string) => links.split('\n').some((l) => l.startsWith(`${index}: `));

  async function podIds(d: TestDaemon): Promise<string[]> {
    return (await d.cri.runtime.ListPodSandbox({})).items.map((p: { id: string }) => p.id);
  }

  it('dual stack: an IPv4 and an IPv6 address per pod, pods reach each other over both, all released on removal', async () => {
    const d = await startDaemon({ toml: `pod_cidr_v6 = "${POD_CIDR_V6}"\n` });
    try {
      await d.cri.image.PullImage({ image: { image } });
      const v4Prefix = d.podCidr.replace(/0\/24$/, '');
      const hostPort = 20000 + (randomBytes(2).readUInt16BE() % 30000);
      const a = await webPod(d, 'ds-a', { portMappings: [{ protocol: 'TCP', containerPort: 8080, hostPort }] });
      const b = await webPod(d, 'ds-b');

      for (const p of [a, b]) {
        expect(p.ip.startsWith(v4Prefix)).toBe(true);
        expect(p.additionalIps).toHaveLength(1);
        expect(p.additionalIps[0]!.startsWith(`${V6_PREFIX}::`)).toBe(true);
      }
      expect(a.ip).not.toBe(b.ip);
      expect(a.additionalIps[0]).not.toBe(b.additionalIps[0]);
      const a6 = a.additionalIps[0]!;
      const b6 = b.additionalIps[0]!;

      // The container sees both addresses on its interface, and a default route in each family.
      const addrs = await exec(d, a.containerId, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(addrs.stdout).toContain(`inet ${a.ip}/24`);
      expect(addrs.stdout).toContain(`inet6 ${a6}/64`);
      expect((await exec(d, a.containerId, ['ip', '-6', 'route', 'show', 'default'])).stdout).toContain(`default via ${V6_PREFIX}::1`);

      // Pod to pod over IPv6 and over IPv4, both ways; the server sees the other pod's own
      // address of that family (no NAT between pods).
      expect(await httpGet(d, b.containerId, `http://[${a6}]:8080/`)).toBe('hello from crib\n');
      expect(await httpGet(d, b.containerId, `http://[${a6}]:8080/cgi-bin/peer`)).toBe(`[${b6}]\n`);
      expect(await httpGet(d, a.containerId, `http://[${b6}]:8080/cgi-bin/peer`)).toBe(`[${a6}]\n`);
      expect(await httpGet(d, b.containerId, `http://${a.ip}:8080/cgi-bin/peer`)).toBe(`[::ffff:${b.ip}]\n`);
      // The hostPort answers on the host's IPv6 address too (the ip6 twin of the DNAT rules).
      const viaHostPort6 = `http://[${V6_PREFIX}::1]:${hostPort}/`;
      expect(await waitFor('the hostPort over IPv6', () => {
        const r = curl(viaHostPort6);
        return r.ok ? r.body : undefined;
      })).toBe('hello from crib\n');
      // [::1] cannot be DNATed to a pod (the kernel drops it): it is left alone, so a client
      // gets "connection refused" at once instead of hanging (IPv4's 127.0.0.1 works).
      const loop6 = curl(`http://[::1]:${hostPort}/`);
      expect(loop6.ok).toBe(false);
      expect(loop6.body).toMatch(/Connection refused|Couldn't connect/);
      expect(curl(`http://127.0.0.1:${hostPort}/`)).toEqual({ ok: true, body: 'hello from crib\n' });

      // Host side: one veth per pod on the daemon's bridge.
      expect(a.hostInterface).toMatch(/^crib[0-9a-f]{8}$/);
      expect((await bridgePorts(d.bridge)).sort()).toEqual([a.hostInterface, b.hostInterface].sort());
      const aIndex = await hostIfindex(d, a.containerId);
      expect(hasLinkIndex(await hostLinks(), aIndex)).toBe(true);

      await d.cri.runtime.RemovePodSandbox({ podSandboxId: a.podSandboxId });
      expect(await podIds(d)).toEqual([b.podSandboxId]);
      expect(existsSync(a.netns)).toBe(false);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(a.netns);
      expect(curl(viaHostPort6).body).not.toBe('hello from crib\n');
      const allocations = (file: string) =>
        (JSON.parse(readFileSync(join(d.root, 'network', file), 'utf8')) as { allocations: Record<string, string> }).allocations;
      // The veth is deleted, and after it the addresses released, in the background (the kernel
      // takes 15-30 ms to delete a veth; no RPC waits for it).
      const links = await waitFor('the removed pod\'s veth and addresses to be released', async () => {
        const l = await hostLinks();
        return !l.includes(`${a.hostInterface!}:`) && !allocations('ipam6.json')[a.podSandboxId] ? l : undefined;
      });
      expect(hasLinkIndex(links, aIndex)).toBe(false);
      expect(allocations('ipam.json')).toEqual({ [b.podSandboxId]: b.ip });
      expect(allocations('ipam6.json')).toEqual({ [b.podSandboxId]: b6 });

      // A new pod gets addresses of its own and works with the remaining one.
      const c = await webPod(d, 'ds-c');
      expect(c.ip.startsWith(v4Prefix)).toBe(true);
      expect(c.additionalIps).toHaveLength(1);
      expect(c.additionalIps[0]).not.toBe(b6);
      expect(c.ip).not.toBe(b.ip);
      expect(await httpGet(d, c.containerId, `http://[${b6}]:8080/cgi-bin/peer`)).toBe(`[${c.additionalIps[0]}]\n`);
      expect((await bridgePorts(d.bridge)).sort()).toEqual([b.hostInterface, c.hostInterface].sort());

      for (const p of [b, c]) await d.cri.runtime.RemovePodSandbox({ podSandboxId: p.podSandboxId });
      expect(await podIds(d)).toEqual([]);
      await waitFor('the veths and addresses to be released', async () =>
        (await bridgePorts(d.bridge)).length === 0 && Object.keys(allocations('ipam6.json')).length === 0);
      expect(await bridgePorts(d.bridge)).toEqual([]);
      expect(allocations('ipam.json')).toEqual({});
      expect(allocations('ipam6.json')).toEqual({});
      // The pods' containers' rootfs mounts go in the background after the removal answered.
      await waitFor('the removed containers\' mounts to go', () => daemonMounts(d).length === 0);
    } finally {
      await d.cleanup();
      // The daemon's cleanup removes the bridge and the ip table; the ip6 twin is ours to remove.
      await run('nft', ['delete', 'table', 'ip6', d.nftTable]).catch(() => undefined);
    }
    expect(await hostLinks()).not.toContain(`${d.bridge}:`);
  });

  it('CNI: pods get addresses from the configured plugins, reach each other, and DEL releases them', async () => {
    const cniDir = join(base, 'cni');
    const confDir = join(cniDir, 'net.d');
    const dataDir = join(cniDir, 'host-local');
    await mkdir(confDir, { recursive: true });
    await writeBridgeConflist(join(confDir, '10-crib-e2e.conflist'), { network: CNI_NETWORK, bridge: CNI_BRIDGE, net: CNI_NET, dataDir });
    // crib takes the first config file by name: a later one, unusable, must be ignored.
    await writeFile(
      join(confDir, '99-decoy.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'decoy', plugins: [{ type: 'crib-no-such-plugin' }] }),
    );
    await writeFile(join(confDir, 'README'), 'not a network config\n');
    const d = await startDaemon({ toml: `plugin = "cni"\ncni_conf_dir = "${confDir}"\ncni_bin_dirs = ["${CNI_BIN_DIR}"]\n` });
    try {
      expect((await networkReady(d)).status).toBe(true);
      await d.cri.image.PullImage({ image: { image } });
      const a = await webPod(d, 'cni-a');
      const b = await webPod(d, 'cni-b');
      const allocated = () => readdirSync(join(dataDir, CNI_NETWORK)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();

      for (const p of [a, b]) {
        expect(p.ip.startsWith(`${CNI_NET}.`)).toBe(true);
        expect(p.additionalIps).toEqual([]);
        // host-local recorded the allocation under the pod's id (the CNI container id).
        expect(readFileSync(join(dataDir, CNI_NETWORK, p.ip), 'utf8')).toContain(p.podSandboxId);
      }
      expect(a.ip).not.toBe(b.ip);
      expect(allocated()).toEqual([a.ip, b.ip].sort());

      const addrs = await exec(d, a.containerId, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      expect(addrs.stdout).toContain(`inet ${a.ip}/24`);
      expect((await exec(d, a.containerId, ['ip', 'route', 'show', 'default'])).stdout).toContain(`default via ${CNI_NET}.1`);

      expect(await httpGet(d, b.containerId, `http://${a.ip}:8080/`)).toBe('hello from crib\n');
      expect(await httpGet(d, b.containerId, `http://${a.ip}:8080/cgi-bin/peer`)).toBe(`[::ffff:${b.ip}]\n`);
      expect(await httpGet(d, a.containerId, `http://${b.ip}:8080/cgi-bin/peer`)).toBe(`[::ffff:${a.ip}]\n`);

      // The plugin's bridge holds the pods' veths; crib's own bridge was never made.
      const aIndex = await hostIfindex(d, a.containerId);
      const bIndex = await hostIfindex(d, b.containerId);
      expect(await bridgePorts(CNI_BRIDGE)).toHaveLength(2);
      const links = await hostLinks();
      expect(hasLinkIndex(links, aIndex)).toBe(true);
      expect(links).not.toContain(`${d.bridge}:`);

      await d.cri.runtime.RemovePodSandbox({ podSandboxId: a.podSandboxId });
      expect(await podIds(d)).toEqual([b.podSandboxId]);
      expect(existsSync(join(dataDir, CNI_NETWORK, a.ip))).toBe(false);
      expect(allocated()).toEqual([b.ip]);
      expect(hasLinkIndex(await hostLinks(), aIndex)).toBe(false);
      expect(await bridgePorts(CNI_BRIDGE)).toHaveLength(1);
      expect(existsSync(a.netns)).toBe(false);
      // b is unaffected: still addressed, still reachable (from the host, through the gateway).
      expect(await waitFor('b from the host', () => {
        const r = curl(`http://${b.ip}:8080/`);
        return r.ok ? r.body : undefined;
      })).toBe('hello from crib\n');
      expect((await exec(d, b.containerId, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout).toContain(`inet ${b.ip}/24`);

      // StopPodSandbox runs DEL as well; RemovePodSandbox after it finds nothing left to do.
      await d.cri.runtime.StopPodSandbox({ podSandboxId: b.podSandboxId });
      expect(allocated()).toEqual([]);
      expect(hasLinkIndex(await hostLinks(), bIndex)).toBe(false);
      expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId: b.podSandboxId })).status.network.ip).toBe('');
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: b.podSandboxId });
      expect(await podIds(d)).toEqual([]);
      expect(await bridgePorts(CNI_BRIDGE)).toEqual([]);
      // The pod's container's rootfs mount goes in the background after the removal answered.
      await waitFor('the removed container\'s mount to go', () => daemonMounts(d).length === 0);
    } finally {
      await d.cleanup();
      await run('ip', ['link', 'del', CNI_BRIDGE]).catch(() => undefined);
      await rm(cniDir, { recursive: true, force: true });
    }
    expect(await hostLinks()).not.toContain(`${CNI_BRIDGE}:`);
  });

  // The CNI spec (Section 3): "The network configuration should not change between add and
  // delete" and "the container runtime must ensure that add is eventually followed by a
  // corresponding delete": DEL must run with the configuration the pod was added with, even when
  // the config dir has changed (a CNI upgrade or migration) or been emptied since; and a daemon
  // restarted in that state must still start (Status then says the network is not ready).
  it('CNI: RemovePodSandbox runs DEL with the configuration the pod was added with; a restart without config still starts', async () => {
    const cniDir = join(base, 'cni-changed');
    const confDir = join(cniDir, 'net.d');
    const dataDir = join(cniDir, 'host-local');
    const confFile = join(confDir, '10-crib-e2e.conflist');
    await mkdir(confDir, { recursive: true });
    await writeBridgeConflist(confFile, { network: CNI_NETWORK, bridge: CNI_BRIDGE, net: CNI_NET, dataDir });
    const toml = `plugin = "cni"\ncni_conf_dir = "${confDir}"\ncni_bin_dirs = ["${CNI_BIN_DIR}"]\n`;
    const d = await startDaemon({ toml });
    let restarted: TestDaemon | undefined;
    try {
      const run1 = await d.cri.runtime.RunPodSandbox({ config: podConfig('cni-changed-1') });
      const run2 = await d.cri.runtime.RunPodSandbox({ config: podConfig('cni-changed-2') });
      const ip1 = (await d.cri.runtime.PodSandboxStatus({ podSandboxId: run1.podSandboxId })).status.network.ip as string;
      const ip2 = (await d.cri.runtime.PodSandboxStatus({ podSandboxId: run2.podSandboxId })).status.network.ip as string;
      const allocatedFile = (ip: string) => join(dataDir, CNI_NETWORK, ip);
      expect(existsSync(allocatedFile(ip1)) && existsSync(allocatedFile(ip2))).toBe(true);

      // The operator moves to another network: pods already running keep the old one until removed.
      await writeBridgeConflist(confFile, { network: LATE_NETWORK, bridge: LATE_BRIDGE, net: LATE_NET, dataDir });
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: run1.podSandboxId });
      expect.soft(existsSync(allocatedFile(ip1)), `${ip1} still allocated after the config changed`).toBe(false);

      // No config at all any more.
      await rm(confFile);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: run2.podSandboxId });
      expect.soft(existsSync(allocatedFile(ip2)), `${ip2} still allocated after the config was removed`).toBe(false);
      expect(await podIds(d)).toEqual([]);

      await d.stop();
      restarted = await startDaemon({ toml, dir: d.dir });
      expect(await networkReady(restarted)).toMatchObject({ status: false, reason: 'NetworkSetupFailed' });
      expect(await podIds(restarted)).toEqual([]);
      expect(existsSync(allocatedFile(ip2))).toBe(false);
    } finally {
      await restarted?.cleanup();
      await d.cleanup();
      for (const bridge of [CNI_BRIDGE, LATE_BRIDGE]) await run('ip', ['link', 'del', bridge]).catch(() => undefined);
      await rm(cniDir, { recursive: true, force: true });
    }
  });

  it('CNI: a DEL that fails fails RemovePodSandbox and keeps the pod for kubelet\'s retry', async () => {
    // The bridge plugin behind a wrapper that refuses DEL while a flag file exists.
    const cniDir = join(base, 'cni-del-fails');
    const confDir = join(cniDir, 'net.d');
    const binDir = join(cniDir, 'bin');
    const dataDir = join(cniDir, 'host-local');
    const refuse = join(cniDir, 'refuse-del');
    await mkdir(confDir, { recursive: true });
    await mkdir(binDir, { recursive: true });
    await writeFile(join(binDir, 'bridge'),
      `#!/bin/sh\nif [ "$CNI_COMMAND" = DEL ] && [ -e ${refuse} ]; then\n` +
      `  echo '{"cniVersion":"1.0.0","code":999,"msg":"test plugin refuses DEL"}'; exit 1\nfi\n` +
      `exec ${CNI_BIN_DIR}/bridge "$@"\n`, { mode: 0o755 });
    await writeBridgeConflist(join(confDir, '10-crib-e2e.conflist'), { network: CNI_NETWORK, bridge: CNI_BRIDGE, net: CNI_NET, dataDir });
    const d = await startDaemon({ toml: `plugin = "cni"\ncni_conf_dir = "${confDir}"\ncni_bin_dirs = ["${binDir}", "${CNI_BIN_DIR}"]\n` });
    try {
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('cni-del-fails') });
      const ip = (await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.network.ip as string;
      expect(existsSync(join(dataDir, CNI_NETWORK, ip))).toBe(true);
      await writeFile(refuse, '');
      await expect(d.cri.runtime.RemovePodSandbox({ podSandboxId })).rejects.toMatchObject({
        details: expect.stringContaining('test plugin refuses DEL'),
      });
      // Nothing was given up: the pod, its address and its namespace are all still there.
      expect(await podIds(d)).toEqual([podSandboxId]);
      expect(existsSync(join(dataDir, CNI_NETWORK, ip))).toBe(true);
      await rm(refuse);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
      expect(await podIds(d)).toEqual([]);
      expect(existsSync(join(dataDir, CNI_NETWORK, ip))).toBe(false);
    } finally {
      await rm(refuse, { force: true });
      await d.cleanup();
      await run('ip', ['link', 'del', CNI_BRIDGE]).catch(() => undefined);
      await rm(cniDir, { recursive: true, force: true });
    }
  });

  it('CNI without a network config: RunPodSandbox fails with FAILED_PRECONDITION, leaves nothing, uses a config written later', async () => {
    const confDir = join(base, `cni-missing-${tag}`);
    const dataDir = join(base, `cni-late-ipam-${tag}`);
    const d = await startDaemon({ toml: `plugin = "cni"\ncni_conf_dir = "${confDir}"\ncni_bin_dirs = ["${CNI_BIN_DIR}"]\n` });
    try {
      const ready = await networkReady(d);
      expect(ready).toMatchObject({ status: false, reason: 'NetworkSetupFailed' });
      expect(ready.message).toContain(confDir);

      const leftovers = async () => {
        expect(await podIds(d)).toEqual([]);
        expect(existsSync(join(d.state, 'pods')) ? readdirSync(join(d.state, 'pods')) : []).toEqual([]);
        expect(daemonMounts(d)).toEqual([]);
      };
      const config = podConfig('no-net');

      // The dir does not exist.
      const missing = await d.cri.runtime.RunPodSandbox({ config }).then(() => undefined, (e: unknown) => e);
      expect(missing).toMatchObject({ code: grpcStatus.FAILED_PRECONDITION });
      expect((missing as Error).message).toContain(`CNI config dir ${confDir} does not exist`);
      await leftovers();

      // The dir exists but holds no config; the same pod name is free again for the retry.
      await mkdir(confDir);
      await writeFile(join(confDir, 'notes.txt'), 'not a network config\n');
      const empty = await d.cri.runtime.RunPodSandbox({ config }).then(() => undefined, (e: unknown) => e);
      expect(empty).toMatchObject({ code: grpcStatus.FAILED_PRECONDITION });
      expect((empty as Error).message).toContain(`no CNI network config (*.conflist, *.conf, *.json) in ${confDir}`);
      await leftovers();

      // Pods on the host network need no pod network and still run.
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({
        config: podConfig('host-net', { linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } }),
      });
      expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.state).toBe('SANDBOX_READY');
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
      await leftovers();

      // A config written later (as a CNI DaemonSet does) is used without a restart.
      await writeBridgeConflist(join(confDir, '10-late.conflist'), { network: LATE_NETWORK, bridge: LATE_BRIDGE, net: LATE_NET, dataDir });
      const late = await d.cri.runtime.RunPodSandbox({ config });
      expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId: late.podSandboxId })).status.network.ip.startsWith(`${LATE_NET}.`)).toBe(true);
      expect(readdirSync(join(dataDir, LATE_NETWORK)).filter((f) => f.startsWith(`${LATE_NET}.`))).toHaveLength(1);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: late.podSandboxId });
      expect(readdirSync(join(dataDir, LATE_NETWORK)).filter((f) => f.startsWith(`${LATE_NET}.`))).toEqual([]);
      await leftovers();
    } finally {
      await d.cleanup();
      await run('ip', ['link', 'del', LATE_BRIDGE]).catch(() => undefined);
      await rm(confDir, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    }
    expect(await hostLinks()).not.toContain(`${LATE_BRIDGE}:`);
  });

  // kubelet keeps the node NotReady while the runtime's NetworkReady is false, and the usual CNI
  // install writes its config after the runtime started: readiness must follow the config dir.
  it('CNI: Status turns NetworkReady once a network config appears', async () => {
    const confDir = join(base, `cni-ready-${tag}`);
    const d = await startDaemon({ toml: `plugin = "cni"\ncni_conf_dir = "${confDir}"\ncni_bin_dirs = ["${CNI_BIN_DIR}"]\n` });
    try {
      expect((await networkReady(d)).status).toBe(false);
      await mkdir(confDir);
      await writeBridgeConflist(join(confDir, '10-late.conflist'), {
        network: LATE_NETWORK, bridge: LATE_BRIDGE, net: LATE_NET, dataDir: join(base, `cni-ready-ipam-${tag}`),
      });
      const ready = await waitFor('NetworkReady after the CNI config appeared', async () => {
        const r = await networkReady(d);
        return r.status ? r : undefined;
      }, 10_000).catch(async () => networkReady(d));
      expect(ready).toMatchObject({ status: true, reason: '' });
    } finally {
      await d.cleanup();
      await rm(confDir, { recursive: true, force: true });
    }
  });
});
