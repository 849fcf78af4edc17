// Dual-stack pods (IPv4 + IPv6) on the built-in network, against the real kernel (root): private
// bridge, nftables tables (ip and ip6) and CIDRs per run; afterAll removes everything and checks.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { nativeBinaries } from '../../src/native-paths.js';
import { pinPodNamespaces, unpinPodNamespaces } from '../../src/sandbox/namespaces.js';
import { PodNetwork } from '../../src/network/pod-network.js';
import { hostVethName } from '../../src/network/veth.js';
import { waitFor } from '../../test-support/daemon.js';
import { curl, inNetns } from '../../test-support/netns-tools.js';

const hex = randomBytes(2).toString('hex');
const NAME = `cribt${hex}`;
const NET = 1 + (randomBytes(1)[0]! % 250);
const CIDR = `10.250.${NET}.0/24`;
const GROUP6 = (0x1000 + (randomBytes(2).readUInt16BE() % 0xefff)).toString(16); // canonical: no leading 0
const CIDR6 = `fd00:250:${GROUP6}::/64`;
const GATEWAY6 = `fd00:250:${GROUP6}::1`;

const base = mkdtempSync(join(tmpdir(), `crib-net6-test-${process.pid}-`));
const podIds = ['a', 'b'].map((p) => `pod6${p}-${process.pid}-${hex}`);
const netnsDirs: string[] = [];
const servers: ChildProcess[] = [];
let net: PodNetwork;

beforeAll(() => {
  if (!existsSync(nativeBinaries.pinns) || !existsSync(nativeBinaries.hostports))
    execFileSync('make', ['-C', fileURLToPath(new URL('../../native', import.meta.url)), 'build/crib-pinns', 'build/crib-hostports']);
  net = new PodNetwork({ root: join(base, 'root'), bridge: NAME, podCidr: CIDR, podCidr6: CIDR6, nftTable: NAME });
});

afterAll(async () => {
  const attempt = async (fn: () => unknown) => {
    try {
      await fn();
    } catch {
      // reported by the leak check below
    }
  };
  for (const s of servers) if (s.exitCode === null && s.signalCode === null) await attempt(() => process.kill(s.pid!, 'SIGKILL'));
  await attempt(() => net?.cleanupAll());
  for (const dir of netnsDirs) await attempt(() => unpinPodNamespaces(dir));
  await attempt(() => rmSync(base, { recursive: true, force: true }));
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
  expect(links).not.toContain(NAME);
  for (const id of podIds) expect(links).not.toContain(hostVethName(id));
  expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain(NAME);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(base);
}, 60_000);

async function newNetns(name: string): Promise<string> {
  const dir = join(base, 'ns', name);
  netnsDirs.push(dir);
  return (await pinPodNamespaces({ dir, net: true })).net!;
}

describe('PodNetwork, dual-stack', () => {
  const hostPort = 20000 + (randomBytes(2).readUInt16BE() % 30000);
  let nsA = '';
  let nsB = '';

  it('gives each pod an IPv4 and an IPv6 address that reach each other and the gateways', async () => {
    nsA = await newNetns('a');
    nsB = await newNetns('b');
    const a = await net.setup(podIds[0]!, nsA, {
      portMappings: [
        { protocol: 'TCP', hostPort, containerPort: 8080 },
        { protocol: 'TCP', hostPort: hostPort + 1, containerPort: 8080, hostIp: GATEWAY6 },
      ],
    });
    const b = await net.setup(podIds[1]!, nsB);
    expect(a.gateway6).toBe(GATEWAY6);
    expect(a.prefixLength6).toBe(64);
    expect(a.ip6).toMatch(new RegExp(`^fd00:250:${GROUP6}::[0-9a-f]+$`));
    expect(a.ip6).not.toBe(b.ip6);
    expect(inNetns(nsA, 'ip', '-o', '-6', 'addr', 'show', 'dev', 'eth0')).toContain(`${a.ip6}/64`);
    expect(inNetns(nsA, 'ip', '-6', 'route')).toContain(`default via ${GATEWAY6} dev eth0`);
    expect(inNetns(nsA, 'busybox', 'ping', '-c', '1', '-W', '5', b.ip6!)).toMatch(/1 packets received/);
    expect(inNetns(nsB, 'busybox', 'ping', '-c', '1', '-W', '5', GATEWAY6)).toMatch(/1 packets received/);
    expect(inNetns(nsB, 'busybox', 'ping', '-c', '1', '-W', '5', a.ip)).toMatch(/1 packets received/);
    expect((await net.status(podIds[0]!))?.ip6).toBe(a.ip6);

    // The wildcard mapping is in both tables; the one bound to an IPv6 hostIP only in ip6.
    const v4 = execFileSync('nft', ['list', 'table', 'ip', NAME], { encoding: 'utf8' });
    const v6 = execFileSync('nft', ['list', 'table', 'ip6', NAME], { encoding: 'utf8' });
    expect(v4).toContain(`tcp dport ${hostPort} dnat to ${a.ip}:8080`);
    expect(v4).not.toContain(`dport ${hostPort + 1}`);
    expect(v6).toContain(`tcp dport ${hostPort} dnat to [${a.ip6}]:8080`);
    expect(v6).toContain(`ip6 daddr ${GATEWAY6} tcp dport ${hostPort + 1} dnat to [${a.ip6}]:8080`);
    expect(v6).toContain(`ip6 saddr ${CIDR6} ip6 daddr != ${CIDR6} masquerade`);
  });

  it('serves hostPorts over IPv6 and IPv4', async () => {
    const www = mkdtempSync(join(base, 'www-'));
    writeFileSync(join(www, 'index.html'), 'dual\n');
    servers.push(spawn('nsenter', [`--net=${nsA}`, 'busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' }));
    const body = await waitFor('the IPv6 hostPort to answer', () => {
      const r = curl(`http://[${GATEWAY6}]:${hostPort}/index.html`);
      return r.ok ? r.body : undefined;
    }, 30_000);
    expect(body).toBe('dual\n');
    expect(curl(`http://[${GATEWAY6}]:${hostPort + 1}/index.html`, nsB)).toEqual({ ok: true, body: 'dual\n' });
    expect(curl(`http://127.0.0.1:${hostPort}/index.html`)).toEqual({ ok: true, body: 'dual\n' });
  });

  it('refuses an IPv6 hostIP on an IPv4-only network', async () => {
    const v4only = new PodNetwork({ root: join(base, 'root4'), bridge: NAME, podCidr: CIDR, nftTable: NAME });
    await expect(
      v4only.setup('never', nsB, { portMappings: [{ protocol: 'TCP', hostPort: 1, containerPort: 1, hostIp: GATEWAY6 }] }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => new PodNetwork({ root: base, podCidr: CIDR6 })).toThrow(/must be IPv4/);
  });

  it('tears down both families', async () => {
    const ip6 = (await net.status(podIds[0]!))!.ip6!;
    await net.teardown(podIds[0]!, nsA);
    const v6 = execFileSync('nft', ['list', 'table', 'ip6', NAME], { encoding: 'utf8' });
    expect(v6).not.toContain(ip6);
    expect(v6).not.toMatch(/hp-[0-9a-f]+/);
    await net.settle();
    expect(JSON.parse(readFileSync(join(base, 'root', 'network', 'ipam6.json'), 'utf8')).allocations[podIds[0]!]).toBeUndefined();
    await net.teardown(podIds[1]!, nsB);
    await net.cleanupAll();
    expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain(NAME);
  });
});
