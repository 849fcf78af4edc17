// The built-in network against the real kernel (root): a private bridge, nftables table and pod
// CIDR per run, pods as pinned network namespaces. afterAll removes every veth, bridge, table,
// namespace and process this file made, and checks that nothing is left.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError } from '../../src/errors.js';
import { nativeBinaries } from '../../src/native-paths.js';
import { pinPodNamespaces, unpinPodNamespaces } from '../../src/sandbox/namespaces.js';
import { PodNetwork } from '../../src/network/pod-network.js';
import { hostVethName } from '../../src/network/veth.js';
import { waitFor } from '../../test-support/daemon.js';
import { curl, inNetns } from '../../test-support/netns-tools.js';

const hex = randomBytes(2).toString('hex');
const BRIDGE = `cribt${hex}`;
const TABLE = `cribt${hex}`;
const NET = 1 + (randomBytes(1)[0]! % 250);
const CIDR = `10.250.${NET}.0/24`;
const GATEWAY = `10.250.${NET}.1`;
// "Outside" network: a namespace that is not a pod and has no route back to the pods.
const OUT_HOST = `10.251.${NET}.1`;
const OUT_PEER = `10.251.${NET}.2`;
const OUT_VETH = `cribo${hex}`;

const base = mkdtempSync(join(tmpdir(), `crib-net-test-${process.pid}-`));
const root = join(base, 'root');
const podIds = [0, 1, 2, 3].map((i) => `pod${i}-${process.pid}-${hex}`);
const netnsDirs: string[] = [];
const servers: ChildProcess[] = [];
let net: PodNetwork;

beforeAll(() => {
  if (!existsSync(nativeBinaries.pinns) || !existsSync(nativeBinaries.hostports))
    execFileSync('make', ['-C', fileURLToPath(new URL('../../native', import.meta.url)), 'build/crib-pinns', 'build/crib-hostports']);
  net = new PodNetwork({ root, bridge: BRIDGE, podCidr: CIDR, mtu: 1400, nftTable: TABLE });
});

afterAll(async () => {
  // Every step runs even when an earlier one throws, so a failure never leaks the rest.
  const attempt = async (fn: () => unknown) => {
    try {
      await fn();
    } catch {
      // reported by the leak check below
    }
  };
  for (const s of servers) if (s.exitCode === null && s.signalCode === null && s.pid) await attempt(() => process.kill(s.pid!, 'SIGKILL'));
  await attempt(() => net?.cleanupAll());
  await attempt(() => execFileSync('ip', ['link', 'del', OUT_VETH], { stdio: 'ignore' }));
  for (const dir of netnsDirs) await attempt(() => unpinPodNamespaces(dir));
  await attempt(() => rmSync(base, { recursive: true, force: true }));
  // Leak check: nothing of ours survives the file.
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
  expect(links).not.toContain(BRIDGE);
  expect(links).not.toContain(OUT_VETH);
  for (const id of podIds) expect(links).not.toContain(hostVethName(id));
  expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain(TABLE);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(base);
}, 60_000);

async function newNetns(name: string): Promise<string> {
  const dir = join(base, 'ns', name);
  netnsDirs.push(dir);
  return (await pinPodNamespaces({ dir, net: true })).net!;
}

const ping = (netns: string, ip: string) => inNetns(netns, 'busybox', 'ping', '-c', '1', '-W', '5', ip);

/** busybox httpd serving `body` at /index.html inside a netns, on port 8080. */
function startHttpd(netns: string, body: string): ChildProcess {
  const www = mkdtempSync(join(base, 'www-'));
  writeFileSync(join(www, 'index.html'), body);
  const child = spawn('nsenter', [`--net=${netns}`, 'busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' });
  servers.push(child);
  return child;
}

describe('PodNetwork', () => {
  let nsA = '';
  let nsB = '';
  let ipA = '';
  let ipB = '';
  const hostPort = 20000 + (randomBytes(2).readUInt16BE() % 30000);

  it('connects two pods to the bridge with distinct addresses that reach each other and the gateway', async () => {
    nsA = await newNetns('a');
    nsB = await newNetns('b');
    const a = await net.setup(podIds[0]!, nsA, {
      hostname: 'pod-a',
      portMappings: [
        { protocol: 'TCP', hostPort, containerPort: 8080 },
        { protocol: 'TCP', hostPort: 0, containerPort: 9999 }, // no hostPort: not mapped
        { protocol: 'TCP', hostPort: hostPort + 1, containerPort: 8080, hostIp: '127.0.0.1' },
        { protocol: 'UDP', hostPort, containerPort: 5353 },
        { protocol: 'SCTP', hostPort: hostPort + 2, containerPort: 9 },
      ],
    });
    const b = await net.setup(podIds[1]!, nsB, {});
    ipA = a.ip;
    ipB = b.ip;
    expect(a).toMatchObject({ gateway: GATEWAY, interface: 'eth0', prefixLength: 24, hostInterface: hostVethName(podIds[0]!) });
    expect(a.portMappings).toEqual([
      { protocol: 'TCP', hostPort, containerPort: 8080, hostIp: '' },
      { protocol: 'TCP', hostPort: hostPort + 1, containerPort: 8080, hostIp: '127.0.0.1' },
      { protocol: 'UDP', hostPort, containerPort: 5353, hostIp: '' },
      { protocol: 'SCTP', hostPort: hostPort + 2, containerPort: 9, hostIp: '' },
    ]);
    expect(ipA).not.toBe(ipB);
    for (const ip of [ipA, ipB]) expect(ip.startsWith(`10.250.${NET}.`)).toBe(true);

    // Inside the pod: eth0 with the address, the MTU, and a default route via the gateway.
    expect(inNetns(nsA, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0')).toContain(`${ipA}/24`);
    expect(inNetns(nsA, 'ip', '-o', 'link', 'show', 'dev', 'eth0')).toMatch(/mtu 1400/);
    expect(inNetns(nsA, 'ip', 'route')).toContain(`default via ${GATEWAY} dev eth0`);
    // On the host: the veth is a port of the bridge, which holds the gateway address.
    expect(execFileSync('ip', ['-o', 'link', 'show', 'master', BRIDGE], { encoding: 'utf8' })).toContain(hostVethName(podIds[0]!));
    expect(execFileSync('ip', ['-o', '-4', 'addr', 'show', 'dev', BRIDGE], { encoding: 'utf8' })).toContain(`${GATEWAY}/24`);

    expect(ping(nsA, ipB)).toMatch(/1 packets received/);
    expect(ping(nsB, ipA)).toMatch(/1 packets received/);
    expect(ping(nsA, GATEWAY)).toMatch(/1 packets received/);
    expect(await net.status(podIds[0]!)).toMatchObject({ ip: ipA, gateway: GATEWAY });
  });

  it('serves a hostPort on 127.0.0.1 from the host', async () => {
    startHttpd(nsA, 'hello from pod a\n');
    const body = await waitFor('the hostPort to answer', () => {
      const r = curl(`http://127.0.0.1:${hostPort}/index.html`);
      return r.ok ? r.body : undefined;
    }, 30_000);
    expect(body).toBe('hello from pod a\n');
    // Pod B reaches pod A's hostPort through the gateway (an address local to the host), and so
    // does pod A itself (hairpin).
    expect(curl(`http://${GATEWAY}:${hostPort}/index.html`, nsB)).toEqual({ ok: true, body: 'hello from pod a\n' });
    expect(curl(`http://${GATEWAY}:${hostPort}/index.html`, nsA)).toEqual({ ok: true, body: 'hello from pod a\n' });
    const table = execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8' });
    expect(table).toContain(`tcp dport ${hostPort} dnat to ${ipA}:8080`);
    expect(table).toContain(`sctp dport ${hostPort + 2} dnat to ${ipA}:9`);
  });

  it('limits a hostPort with a hostIP to that address', async () => {
    expect(curl(`http://127.0.0.1:${hostPort + 1}/index.html`)).toEqual({ ok: true, body: 'hello from pod a\n' });
    // The gateway is a host address too, but not the one the mapping names: nothing answers.
    expect(curl(`http://${GATEWAY}:${hostPort + 1}/index.html`, nsB).ok).toBe(false);
  });

  it('forwards a UDP hostPort', async () => {
    // busybox nc has no UDP: a node one-liner in the pod's netns (nsenter joins it before exec).
    const server = "require('dgram').createSocket('udp4').on('message', (m) => process.stdout.write(m)).bind(5353)";
    const listener = spawn('nsenter', [`--net=${nsA}`, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'ignore'] });
    servers.push(listener);
    let received = '';
    listener.stdout!.on('data', (d: Buffer) => (received += d.toString()));
    const sock = createSocket('udp4');
    try {
      // Datagrams sent before the listener binds are lost: keep sending until one arrives.
      await waitFor('the datagram to reach the pod', () => {
        sock.send('ping-udp\n', hostPort, '127.0.0.1');
        return received.includes('ping-udp') ? true : undefined;
      }, 30_000);
    } finally {
      sock.close();
      process.kill(listener.pid!, 'SIGKILL');
    }
  });

  it('refuses a hostPort another pod holds, and leaves nothing of the refused pod', async () => {
    const nsC = await newNetns('c');
    const err = await net
      .setup(podIds[2]!, nsC, { portMappings: [{ protocol: 'TCP', hostPort, containerPort: 80 }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as Error).message).toContain(String(hostPort));
    expect(await net.status(podIds[2]!)).toBeUndefined();
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(hostVethName(podIds[2]!));
    // A different protocol on the same port is not a conflict.
    const c = await net.setup(podIds[2]!, nsC, { portMappings: [{ protocol: 'SCTP', hostPort, containerPort: 80 }] });
    expect(c.ip).not.toBe(ipA);
    await net.teardown(podIds[2]!, nsC);
    // A namespace that is not there is named in the error.
    await expect(net.setup(podIds[2]!, join(base, 'no-such-netns'))).rejects.toThrow(/no-such-netns/);
    expect(await net.status(podIds[2]!)).toBeUndefined();
  });

  it('masquerades pod traffic to destinations outside the pod network', async () => {
    // The outside namespace only knows its /30 to the host: replies can only come back when the
    // pod's source address was rewritten to the host's.
    const nsOut = await newNetns('outside');
    execFileSync('ip', ['link', 'add', OUT_VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsOut]);
    execFileSync('ip', ['addr', 'add', `${OUT_HOST}/30`, 'dev', OUT_VETH]);
    execFileSync('ip', ['link', 'set', OUT_VETH, 'up']);
    inNetns(nsOut, 'ip', 'addr', 'add', `${OUT_PEER}/30`, 'dev', 'eth0');
    inNetns(nsOut, 'ip', 'link', 'set', 'eth0', 'up');
    expect(inNetns(nsOut, 'ip', 'route')).not.toContain('default');
    startHttpd(nsOut, 'outside\n');
    const body = await waitFor('the outside server to answer the pod', () => {
      const r = curl(`http://${OUT_PEER}:8080/index.html`, nsB);
      return r.ok ? r.body : undefined;
    }, 30_000);
    expect(body).toBe('outside\n');
    expect(execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8' })).toContain(`ip saddr ${CIDR} ip daddr != ${CIDR} masquerade`);
  });

  it('keeps allocations across a new instance and never hands an address out twice', async () => {
    // One instance writes a root at a time (a daemon has one): the first one's background
    // releases end before the second reads the files.
    await net.settle();
    const again = new PodNetwork({ root, bridge: BRIDGE, podCidr: CIDR, mtu: 1400, nftTable: TABLE });
    expect((await again.status(podIds[0]!))?.ip).toBe(ipA);
    expect((await again.status(podIds[1]!))?.ip).toBe(ipB);
    expect((await again.status(podIds[0]!))?.portMappings).toHaveLength(4);
    const ipam = JSON.parse(readFileSync(join(root, 'network', 'ipam.json'), 'utf8'));
    expect(ipam.allocations[podIds[0]!]).toBe(ipA);
    // The persisted host port still conflicts for the new instance.
    const nsD = await newNetns('d');
    await expect(again.setup(podIds[3]!, nsD, { portMappings: [{ protocol: 'TCP', hostPort, containerPort: 1 }] })).rejects.toBeInstanceOf(AlreadyExistsError);
    const d = await again.setup(podIds[3]!, nsD, {});
    expect([ipA, ipB]).not.toContain(d.ip);
    await again.teardown(podIds[3]!, nsD);
  });

  it('tears a pod down completely: rules, veth and address; twice is fine', async () => {
    await net.teardown(podIds[0]!, nsA);
    // At once: no host ports, no status. The veth and then the address go in the background.
    const table = execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8' });
    expect(table).not.toContain(`dport ${hostPort}`);
    expect(table).not.toMatch(/hp-[0-9a-f]+/);
    expect(await net.status(podIds[0]!)).toBeUndefined();
    expect(curl(`http://127.0.0.1:${hostPort}/index.html`).ok).toBe(false);
    await net.teardown(podIds[0]!, nsA);
    await net.settle();
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(hostVethName(podIds[0]!));
    expect(inNetns(nsA, 'ip', '-o', 'link')).not.toContain('eth0');
    expect(JSON.parse(readFileSync(join(root, 'network', 'ipam.json'), 'utf8')).allocations[podIds[0]!]).toBeUndefined();
  });

  it('hands a torn-down pod\'s address to a new pod only once its veth is gone', async () => {
    // A /30 has one pod address: the second pod can only have the first one's.
    const tiny = new PodNetwork({ root: join(base, 'tiny'), bridge: `${BRIDGE}t`, podCidr: `10.252.${NET}.0/30`, nftTable: `${TABLE}t` });
    const [first, second] = [`tiny1-${process.pid}-${hex}`, `tiny2-${process.pid}-${hex}`];
    podIds.push(first, second);
    try {
      const a = await tiny.setup(first, await newNetns('tiny1'), {});
      expect(a.ip).toBe(`10.252.${NET}.2`);
      await tiny.teardown(first);
      const b = await tiny.setup(second, await newNetns('tiny2'), {});
      expect(b.ip).toBe(a.ip);
      expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(hostVethName(first));
      await tiny.teardown(second);
    } finally {
      await tiny.cleanupAll();
    }
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(`${BRIDGE}t`);
  });

  it('tears down a pod whose network namespace is already gone', async () => {
    const dirB = netnsDirs[1]!;
    await unpinPodNamespaces(dirB);
    // The veth vanishes with the namespace once nothing holds it.
    await waitFor('the veth to go with its namespace', () =>
      execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes(hostVethName(podIds[1]!)) ? undefined : true,
    30_000);
    await net.teardown(podIds[1]!, nsB);
    expect(await net.status(podIds[1]!)).toBeUndefined();
  });

  it('reconciles leaks: addresses, host ports and veths of pods that no longer exist', async () => {
    const nsE = await newNetns('e');
    const leakId = `leak-${process.pid}-${hex}`;
    podIds.push(leakId);
    await net.setup(leakId, nsE, { portMappings: [{ protocol: 'UDP', hostPort, containerPort: 53 }] });
    expect(await net.reconcile([])).toEqual([leakId]);
    expect(await net.status(leakId)).toBeUndefined();
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(hostVethName(leakId));
    expect(execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8' })).not.toContain(`dport ${hostPort}`);
  });

  it('gives a torn-down pod\'s hostPort to a new pod once the old pod\'s release (rules, veth) is done', async () => {
    const [one, two] = [`hp1-${process.pid}-${hex}`, `hp2-${process.pid}-${hex}`];
    podIds.push(one, two);
    const port = hostPort + 20;
    const a = await net.setup(one, await newNetns('hp1'), { portMappings: [{ protocol: 'TCP', hostPort: port, containerPort: 80 }] });
    const nsTwo = await newNetns('hp2');
    // Asked for while the old pod is being torn down: its port is held until its rules and veth
    // are gone (the veth in the background), and the new pod waits for that instead of failing.
    const [b] = await Promise.all([
      net.setup(two, nsTwo, { portMappings: [{ protocol: 'TCP', hostPort: port, containerPort: 80 }] }),
      net.teardown(one),
    ]);
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(hostVethName(one));
    const table = execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8' });
    expect(table).toContain(`tcp dport ${port} dnat to ${b.ip}:80`);
    expect(b.ip === a.ip || !table.includes(`dnat to ${a.ip}:80`)).toBe(true);
    expect(table.match(/jump hp-/g)).toHaveLength(1);
    await net.teardown(two);
    await net.settle();
  });

  it('sets up and tears down many pods concurrently without mixing them up', async () => {
    const ids = Array.from({ length: 5 }, (_, i) => `par${i}-${process.pid}-${hex}`);
    podIds.push(...ids);
    const nss = await Promise.all(ids.map((_, i) => newNetns(`par${i}`)));
    const results = await Promise.all(
      ids.map((id, i) => net.setup(id, nss[i]!, { portMappings: [{ protocol: 'TCP', hostPort: hostPort + 10 + i, containerPort: 80 }] })),
    );
    // The same pod set up twice at once gets one address, not two.
    const [again1, again2] = await Promise.all([net.setup(ids[0]!, nss[0]!), net.setup(ids[0]!, nss[0]!)]);
    expect(again1.ip).toBe(results[0]!.ip);
    expect(again2.ip).toBe(results[0]!.ip);
    expect(new Set(results.map((r) => r.ip)).size).toBe(5);
    for (const [i, r] of results.entries()) expect(inNetns(nss[i]!, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0')).toContain(`${r.ip}/24`);
    await Promise.all(ids.map((id, i) => net.teardown(id, nss[i]!)));
    await net.settle();
    const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
    for (const id of ids) expect(links).not.toContain(hostVethName(id));
    expect(execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8' })).not.toMatch(/hp-[0-9a-f]+/);
    // Released on disk, as a fresh instance sees.
    for (const id of ids) expect(await new PodNetwork({ root, bridge: BRIDGE, podCidr: CIDR, nftTable: TABLE }).status(id)).toBeUndefined();
  });

  it('cleanupAll removes the bridge, the table and the state', async () => {
    mkdirSync(join(root, 'network'), { recursive: true });
    await net.cleanupAll();
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(BRIDGE);
    expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain(TABLE);
    expect(existsSync(join(root, 'network', 'ipam.json'))).toBe(false);
    // Teardown still works with nothing left on the host.
    await net.teardown(podIds[0]!);
  });

  it('remakes the host side on demand, even after it was removed behind its back', async () => {
    const ns = await newNetns('f');
    const id = `again-${process.pid}-${hex}`;
    podIds.push(id);
    const first = await net.setup(id, ns, {});
    await net.teardown(id, ns);
    execFileSync('ip', ['link', 'del', BRIDGE]);
    const second = await net.setup(id, ns, {});
    expect(second.ip).not.toBe(first.ip); // round-robin: not the address just released
    expect(ping(ns, GATEWAY)).toMatch(/1 packets received/);
    await net.teardown(id, ns);
    await net.cleanupAll();
  });
});
