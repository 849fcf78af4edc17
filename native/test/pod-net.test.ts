// crib-pinns pod-net (native/pinns/pod-net.c) against the real kernel: a private bridge, pinned
// network namespaces; what attach makes is read back with `ip -j` from outside and inside;
// a name clash is replaced; detach removes it; bad arguments are refused with a clear message
// and leave nothing; pinning with the attach options does both in one process. Host ports, which
// crib-pinns has crib-hostports write: the pod's DNAT chain and its jump in a private nftables
// table (both families), replaced by a new attach, removed by detach; a failed install, or a
// helper that cannot run, leaves neither rules nor veth. Everything made here is removed in
// afterAll, and checked gone.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PINNS = fileURLToPath(new URL('../build/crib-pinns', import.meta.url));
const HOSTPORTS = fileURLToPath(new URL('../build/crib-hostports', import.meta.url));
const hex = randomBytes(3).toString('hex');
const BRIDGE = `cribn${hex}`;
const VETH = `cribv${hex}`;
const VETH2 = `cribw${hex}`;
const TABLE = `cribhp${hex}`;
const CHAIN = `hp-${hex}${hex}abcd`;
const NET = 1 + (randomBytes(1)[0]! % 250);
const V4 = `10.253.${NET}`;
const V6 = `fd00:253:${NET.toString(16)}`;
const base = mkdtempSync(join(tmpdir(), 'crib-pod-net-'));
const pinned: string[] = [];

interface Run { status: number | null; stdout: string; stderr: string }
const pinns = (...args: string[]): Run => {
  const r = spawnSync(PINNS, args, { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ipj = <T>(...args: string[]): T => JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' }) || '[]') as T;
const inNs = <T>(ns: string, ...args: string[]): T =>
  JSON.parse(execFileSync('nsenter', [`--net=${ns}`, 'ip', '-j', ...args], { encoding: 'utf8' }) || '[]') as T;
const linkExists = (name: string) => spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;
const table = (family: 'ip' | 'ip6') => execFileSync('nft', ['list', 'table', family, TABLE], { encoding: 'utf8' });
const tableExists = (family: 'ip' | 'ip6') => spawnSync('nft', ['list', 'table', family, TABLE], { stdio: 'ignore' }).status === 0;
const portArgs = ['--nft-helper', HOSTPORTS, '--nft-table', TABLE, '--nft-family', 'ip', '--nft-family', 'ip6', '--hostport-chain', CHAIN];

interface Link { ifname: string; ifindex: number; mtu: number; master?: string; flags: string[]; linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean } } }
interface Addr { ifname: string; addr_info: { family: string; local: string; prefixlen: number; nodad?: boolean }[] }
interface Route { dst: string; gateway?: string; dev: string }

function newNetns(name: string): string {
  const dir = join(base, name);
  const r = pinns('--dir', dir, '--net');
  expect(r.stderr).toBe('');
  pinned.push(dir);
  return join(dir, 'net');
}

const attachArgs = (ns: string, veth = VETH) => [
  'pod-net', 'attach', '--netns', ns, '--bridge', BRIDGE, '--host-if', veth, '--mtu', '1400',
  '--addr', `${V4}.5/24`, '--addr', `${V6}::5/64,nodad`, '--gw', `${V4}.1`, '--gw', `${V6}::1`,
];

beforeAll(() => {
  execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', `${V4}.1/24`, 'dev', BRIDGE]);
  execFileSync('ip', ['addr', 'add', `${V6}::1/64`, 'dev', BRIDGE, 'nodad']);
  execFileSync('ip', ['link', 'set', BRIDGE, 'up']);
  // The daemon's table layout (src/network/nft-table.ts), as far as host ports use it.
  for (const f of ['ip', 'ip6']) execFileSync('nft', ['-f', '-'], { input: `add table ${f} ${TABLE}\nadd chain ${f} ${TABLE} hostports\n` });
});

afterAll(() => {
  for (const v of [VETH, VETH2]) spawnSync('ip', ['link', 'del', v], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
  for (const f of ['ip', 'ip6'] as const) spawnSync('nft', ['delete', 'table', f, TABLE], { stdio: 'ignore' });
  for (const dir of pinned) pinns('--remove', dir);
  rmSync(base, { recursive: true, force: true });
  for (const name of [BRIDGE, VETH, VETH2]) expect(linkExists(name)).toBe(false);
  for (const f of ['ip', 'ip6'] as const) expect(tableExists(f)).toBe(false);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(base);
});

describe('crib-pinns pod-net', () => {
  let ns = '';

  it('attach: a hairpin bridge port whose peer is eth0 in the pod, with addresses and default routes', () => {
    ns = newNetns('a');
    const r = pinns(...attachArgs(ns));
    expect(r).toMatchObject({ status: 0, stderr: '' });

    const [host] = ipj<Link[]>('-d', 'link', 'show', 'dev', VETH);
    expect(host).toMatchObject({ ifname: VETH, mtu: 1400, master: BRIDGE });
    expect(host!.flags).toContain('UP');
    expect(host!.linkinfo?.info_kind).toBe('veth');
    expect(host!.linkinfo?.info_slave_data?.hairpin).toBe(true);
    // A bridge port needs no address: IPv6 is off on it (no link-local address, no routes).
    expect(readFileSync(`/proc/sys/net/ipv6/conf/${VETH}/disable_ipv6`, 'utf8')).toBe('1\n');
    expect(ipj<Addr[]>('addr', 'show', 'dev', VETH)[0]!.addr_info).toEqual([]);

    const links = inNs<Link[]>(ns, 'link', 'show');
    expect(links.map((l) => l.ifname).sort()).toEqual(['eth0', 'lo']);
    for (const l of links) expect(l.flags).toContain('UP');
    expect(links.find((l) => l.ifname === 'eth0')!.mtu).toBe(1400);
    const [eth0] = inNs<Addr[]>(ns, 'addr', 'show', 'dev', 'eth0');
    const global = eth0!.addr_info.filter((a) => !a.local.startsWith('fe80'));
    expect(global).toEqual([
      expect.objectContaining({ family: 'inet', local: `${V4}.5`, prefixlen: 24 }),
      expect.objectContaining({ family: 'inet6', local: `${V6}::5`, prefixlen: 64, nodad: true }),
    ]);
    expect(inNs<Route[]>(ns, '-4', 'route', 'show', 'default')).toEqual([expect.objectContaining({ dst: 'default', gateway: `${V4}.1`, dev: 'eth0' })]);
    expect(inNs<Route[]>(ns, '-6', 'route', 'show', 'default')).toEqual([expect.objectContaining({ dst: 'default', gateway: `${V6}::1`, dev: 'eth0' })]);
    // And it carries traffic: the pod reaches its gateway over both families.
    expect(execFileSync('nsenter', [`--net=${ns}`, 'busybox', 'ping', '-c', '1', '-W', '5', `${V4}.1`], { encoding: 'utf8' })).toMatch(/1 packets received/);
    expect(execFileSync('nsenter', [`--net=${ns}`, 'busybox', 'ping', '-c', '1', '-W', '5', `${V6}::1`], { encoding: 'utf8' })).toMatch(/1 packets received/);
  });

  it('attach again under the same name replaces the veth (a setup a crash interrupted)', () => {
    const before = ipj<Link[]>('link', 'show', 'dev', VETH)[0]!.ifindex;
    const r = pinns(...attachArgs(ns).map((a) => (a === `${V4}.5/24` ? `${V4}.6/24` : a)));
    expect(r).toMatchObject({ status: 0, stderr: '' });
    const after = ipj<Link[]>('link', 'show', 'dev', VETH)[0]!.ifindex;
    expect(after).not.toBe(before);
    const [eth0] = inNs<Addr[]>(ns, '-4', 'addr', 'show', 'dev', 'eth0');
    expect(eth0!.addr_info.map((a) => a.local)).toEqual([`${V4}.6`]);
  });

  it('detach deletes both ends; detaching what is gone is fine; a non-veth is refused', () => {
    expect(pinns('pod-net', 'detach', '--host-if', VETH)).toMatchObject({ status: 0, stderr: '' });
    expect(linkExists(VETH)).toBe(false);
    expect(inNs<Link[]>(ns, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
    expect(pinns('pod-net', 'detach', '--host-if', VETH)).toMatchObject({ status: 0, stderr: '' });
    const r = pinns('pod-net', 'detach', '--host-if', BRIDGE);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`\`${BRIDGE}\` is a bridge, not a pod's veth: not deleting it`);
    expect(linkExists(BRIDGE)).toBe(true);
  });

  it('refuses bad arguments with a message naming them, and leaves nothing', () => {
    const cases: [string[], string][] = [
      [attachArgs(ns).map((a) => (a === `${V4}.5/24` ? `${V4}.5/33` : a)), 'prefix length `33` is not 1-32'],
      [attachArgs(ns).map((a) => (a === `${V4}.5/24` ? 'nonsense/24' : a)), '`nonsense` is not an IP address'],
      [attachArgs(ns).map((a) => (a === `${V4}.5/24` ? `${V4}.5/24,dad` : a)), 'unknown flag `dad`'],
      [attachArgs(ns).map((a) => (a === VETH ? 'bad/name' : a)), 'character `/` not allowed in an interface name'],
      [attachArgs(ns).map((a) => (a === VETH ? 'x'.repeat(16) : a)), 'an interface name has 1 to 15 characters'],
      [attachArgs(ns).map((a) => (a === '1400' ? '70000' : a)), '--mtu `70000`: not a number 68-65535'],
      [attachArgs(ns).map((a) => (a === BRIDGE ? `${BRIDGE}x` : a)), `bridge \`${BRIDGE}x\`: netlink RTM_GETLINK \`${BRIDGE}x\` (host): No such device`],
      [attachArgs(ns).map((a) => (a === BRIDGE ? 'lo' : a)), '`lo` is a link without a kind, not a bridge'],
      [attachArgs(join(base, 'a', 'missing')), `open \`${join(base, 'a', 'missing')}\`: No such file or directory`],
      [attachArgs('/proc/self/ns/uts'), '`/proc/self/ns/uts` is a namespace, but not a network namespace'],
      [['pod-net', 'attach', '--netns', ns, '--bridge', BRIDGE, '--host-if', VETH], 'at least one --addr is required'],
      [['pod-net', 'attach', '--netns', ns, '--bridge', BRIDGE, '--host-if', VETH, '--addr', `${V4}.5/24`, '--gw', `${V6}::1`], 'IPv6 gateway without an IPv6 --addr'],
      [['pod-net', 'attach', '--netns', ns, '--bridge', BRIDGE, '--host-if', VETH, '--addr', `${V4}.5/24`, '--gw', `${V4}.1`, '--gw', `${V4}.2`], 'two IPv4 gateways'],
      [['pod-net', 'attach', '--netns', ns, '--bridge', BRIDGE, '--host-if', VETH, '--addr', `${V4}.5/24`, '--gw'], '`--gw` is not an option with a value'],
      [['pod-net', 'detach', '--bridge', BRIDGE], 'pod-net detach: unknown option `--bridge` (only --host-if'],
      [[...attachArgs(ns), ...portArgs, '--hostport', 'icmp:80:80'], 'protocol `icmp` is not tcp, udp or sctp'],
      [[...attachArgs(ns), ...portArgs, '--hostport', 'tcp:0:80'], 'host port `0` is not 1-65535'],
      [[...attachArgs(ns), ...portArgs, '--hostport', 'tcp:80:70000'], 'container port `70000` is not 1-65535'],
      [[...attachArgs(ns), ...portArgs, '--hostport', 'tcp:80'], 'expected PROTO:HOSTPORT:CONTAINERPORT[:HOSTIP]'],
      [[...attachArgs(ns), ...portArgs, '--hostport', 'tcp:80:80:999.1.1.1'], 'host IP `999.1.1.1` is not an IP address'],
      [[...attachArgs(ns), ...portArgs, '--hostport', `tcp:80:80:${'1'.repeat(100)}`], 'too long'],
      [[...attachArgs(ns), '--nft-table', TABLE, '--nft-family', 'ip', '--hostport-chain', CHAIN, '--hostport', 'tcp:80:80:fd00::1'],
        'host port 80 has an IPv6 host IP, but no --nft-family ip6'],
      [[...attachArgs(ns), '--nft-table', TABLE, '--hostport-chain', CHAIN, '--hostport', 'tcp:80:80'], '--nft-table, --hostport-chain and --nft-family go together'],
      [[...attachArgs(ns), ...portArgs.map((a) => (a === CHAIN ? 'hostports' : a)), '--hostport', 'tcp:80:80'], "a pod's chain is named hp-..."],
      [[...attachArgs(ns), ...portArgs.map((a) => (a === TABLE ? 'a;b' : a)), '--hostport', 'tcp:80:80'], 'character `;` not allowed in an nftables name'],
      [[...attachArgs(ns), ...portArgs, '--nft-family', 'ip', '--hostport', 'tcp:80:80'], '--nft-family `ip` given twice'],
      [[...attachArgs(ns), ...portArgs.slice(2), '--hostport', 'tcp:80:80'], '--nft-helper (the crib-hostports binary) is required with --nft-table'],
      [[...attachArgs(ns), ...portArgs.map((a) => (a === HOSTPORTS ? 'crib-hostports' : a)), '--hostport', 'tcp:80:80'],
        '--nft-helper `crib-hostports`: an absolute path is required'],
      // Checked only once the veth is made (a helper that is gone): it is undone.
      [[...attachArgs(ns), ...portArgs.map((a) => (a === HOSTPORTS ? join(base, 'no-helper') : a)), '--hostport', 'tcp:80:80'],
        `posix_spawn \`${join(base, 'no-helper')}\`: No such file or directory`],
      [['pod-net', 'detach', '--host-if', VETH, ...portArgs, '--hostport', 'tcp:80:80'], 'unknown option `--hostport`'],
      [['pod-net', 'remove'], 'pod-net: attach or detach is required'],
      // The kernel's own refusal, with its reason: a gateway outside the pod's subnet.
      [['pod-net', 'attach', '--netns', ns, '--bridge', BRIDGE, '--host-if', VETH, '--addr', `${V4}.5/24`, '--gw', '10.254.254.1'],
        'netlink RTM_NEWROUTE default via 10.254.254.1 dev `eth0` (pod): Network is unreachable'],
    ];
    for (const [args, message] of cases) {
      const r = pinns(...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toContain(`crib-pinns: `);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(linkExists(VETH), args.join(' ')).toBe(false);
      expect(inNs<Link[]>(ns, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
    }
  });

  it('attach with host ports: DNAT rules in the pod chain per family, a jump to it; a new attach replaces them; detach removes them', () => {
    const ports = ['--hostport', 'tcp:18080:80', '--hostport', 'udp:18053:53:127.0.0.1', '--hostport', 'sctp:18099:9:fd00::1'];
    expect(pinns(...attachArgs(ns), ...portArgs, ...ports)).toMatchObject({ status: 0, stderr: '' });
    const v4 = table('ip');
    expect(v4).toContain(`jump ${CHAIN}`);
    expect(v4).toContain(`tcp dport 18080 dnat to ${V4}.5:80`);
    expect(v4).toContain(`ip daddr 127.0.0.1 udp dport 18053 dnat to ${V4}.5:53`);
    expect(v4).not.toContain('18099');
    const v6 = table('ip6');
    expect(v6).toContain(`jump ${CHAIN}`);
    expect(v6).toContain(`tcp dport 18080 dnat to [${V6}::5]:80`);
    expect(v6).toContain(`ip6 daddr fd00::1 sctp dport 18099 dnat to [${V6}::5]:9`);
    expect(v6).not.toContain('18053');

    // Attached again (a retried setup): the pod's rules are replaced, not added to.
    expect(pinns(...attachArgs(ns), ...portArgs, '--hostport', 'tcp:18081:81')).toMatchObject({ status: 0, stderr: '' });
    for (const f of ['ip', 'ip6'] as const) {
      const t = table(f);
      expect(t.match(/jump hp-/g)).toHaveLength(1);
      expect(t).toContain('tcp dport 18081 dnat to');
      expect(t).not.toMatch(/18080|18053|18099/);
    }

    // A failed install (no such table) changes no rule and leaves no veth.
    const before = table('ip');
    const bad = pinns(...attachArgs(ns), ...portArgs.map((a) => (a === TABLE ? `${TABLE}x` : a)), '--hostport', 'tcp:18082:82');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`host ports in table ${TABLE}x: nftables list chain ip ${TABLE}x hostports: Error: No such file or directory`);
    expect(linkExists(VETH)).toBe(false);
    expect(inNs<Link[]>(ns, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
    expect(table('ip')).toBe(before);

    // Detach takes the rules (and says so, before it deletes the veth) and then the veth; again
    // is fine, and so is a missing table.
    expect(pinns(...attachArgs(ns), ...portArgs, '--hostport', 'tcp:18081:81')).toMatchObject({ status: 0, stderr: '' });
    expect(pinns('pod-net', 'detach', '--host-if', VETH, ...portArgs)).toEqual({ status: 0, stdout: 'host ports removed\n', stderr: '' });
    expect(pinns('pod-net', 'detach', '--host-if', VETH)).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(linkExists(VETH)).toBe(false);
    for (const f of ['ip', 'ip6'] as const) expect(table(f)).not.toContain('hp-');
    expect(pinns('pod-net', 'detach', '--host-if', VETH, ...portArgs)).toMatchObject({ status: 0, stderr: '' });
    expect(pinns('pod-net', 'detach', '--host-if', VETH, ...portArgs.map((a) => (a === TABLE ? `${TABLE}x` : a)))).toMatchObject({ status: 0, stderr: '' });
  });

  it('pinning with the attach options pins and attaches in one process; a failed attach unpins', () => {
    const dir = join(base, 'b');
    pinned.push(dir);
    const net = ['--bridge', BRIDGE, '--host-if', VETH2, '--addr', `${V4}.7/24`, '--gw', `${V4}.1`];
    expect(pinns('--dir', dir, '--net', '--uts', '--ipc', '--hostname', 'b', ...net)).toMatchObject({ status: 0, stderr: '' });
    expect(ipj<Link[]>('link', 'show', 'dev', VETH2)[0]).toMatchObject({ master: BRIDGE });
    const [eth0] = inNs<Addr[]>(join(dir, 'net'), '-4', 'addr', 'show', 'dev', 'eth0');
    expect(eth0!.addr_info.map((a) => a.local)).toEqual([`${V4}.7`]);
    expect(pinns('pod-net', 'detach', '--host-if', VETH2).status).toBe(0);
    expect(pinns('--remove', dir).status).toBe(0);

    // The kernel refuses the route: the veth goes, and so do the pinned namespaces.
    const bad = pinns('--dir', dir, '--net', '--uts', '--bridge', BRIDGE, '--host-if', VETH2, '--addr', `${V4}.7/24`, '--gw', '10.254.254.1');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('RTM_NEWROUTE default via 10.254.254.1');
    expect(linkExists(VETH2)).toBe(false);
    expect(existsSync(join(dir, 'net'))).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);

    // Host ports in the same process; when they cannot be installed, the veth and the pins go.
    expect(pinns('--dir', dir, '--net', ...net, ...portArgs, '--hostport', 'tcp:18090:90')).toMatchObject({ status: 0, stderr: '' });
    expect(table('ip')).toContain(`tcp dport 18090 dnat to ${V4}.7:90`);
    expect(pinns('pod-net', 'detach', '--host-if', VETH2, ...portArgs).status).toBe(0);
    expect(table('ip')).not.toContain('hp-');
    expect(pinns('--remove', dir).status).toBe(0);
    const noTable = pinns('--dir', dir, '--net', ...net, ...portArgs.map((a) => (a === TABLE ? `${TABLE}x` : a)), '--hostport', 'tcp:18090:90');
    expect(noTable.status).toBe(1);
    expect(noTable.stderr).toContain('No such file or directory');
    expect(linkExists(VETH2)).toBe(false);
    expect(existsSync(join(dir, 'net'))).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
    // Without --net there is no namespace to attach.
    const noNet = pinns('--dir', dir, '--ipc', ...net);
    expect(noNet.stderr).toContain('--bridge and the other pod network options need --net');
    expect(existsSync(dir)).toBe(false);
  });
});

describe('crib-hostports', () => {
  const helper = (...args: string[]): Run => {
    const r = spawnSync(HOSTPORTS, args, { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('refuses what it cannot do with a usage error, touching no rule', () => {
    const opts = portArgs.slice(2);
    const before = table('ip');
    const cases: [string[], string][] = [
      [[], 'install or remove is required'],
      [['remove'], 'remove: --nft-table, --nft-family and --hostport-chain are required'],
      [['install', ...opts, '--hostport', 'tcp:80:80'], 'install: at least one --pod-ip is required'],
      [['install', ...opts, '--pod-ip', '10.0.0.1', '--pod-ip', '10.0.0.2'], '--pod-ip `10.0.0.2`: a second IPv4 address (one per family)'],
      [['install', ...opts, '--pod-ip', 'pod'], '--pod-ip `pod`: not an IP address'],
      [['install', ...opts, '--hostport', 'tcp:0:80', '--pod-ip', '10.0.0.1'], 'host port `0` is not 1-65535'],
      [['remove', ...opts, '--hostport', 'tcp:80:80'], '--hostport is for install'],
      [['remove', ...opts, '--pod-ip', '10.0.0.1'], '--pod-ip is for install'],
      [['remove', '--nft-table', TABLE, '--hostport-chain', CHAIN], '--nft-table, --hostport-chain and --nft-family go together'],
      [['remove', ...opts, '--bridge', BRIDGE], 'unknown option `--bridge`'],
    ];
    for (const [args, message] of cases) {
      const r = helper(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toMatch(/^crib-hostports: /);
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    expect(table('ip')).toBe(before);
  });

  it('installs and removes on its own, as crib-pinns runs it', () => {
    const opts = portArgs.slice(2);
    expect(helper('install', ...opts, '--hostport', 'tcp:18070:70', '--pod-ip', `${V4}.9`, '--pod-ip', `${V6}::9`)).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(table('ip')).toContain(`tcp dport 18070 dnat to ${V4}.9:70`);
    expect(table('ip6')).toContain(`tcp dport 18070 dnat to [${V6}::9]:70`);
    expect(helper('remove', ...opts)).toEqual({ status: 0, stdout: '', stderr: '' });
    for (const f of ['ip', 'ip6'] as const) expect(table(f)).not.toContain('hp-');
  });
});
