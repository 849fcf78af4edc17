// crib-pinns pod-net (native/pinns/pod-net.c) against the real kernel: a private bridge, pinned
// network namespaces; what attach makes is read back with `ip -j` from outside and inside;
// a name clash is replaced; detach removes it; bad arguments are refused with a clear message
// and leave nothing; pinning with the attach options does both in one process. Everything made
// here is removed in afterAll, and checked gone.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PINNS = fileURLToPath(new URL('../build/crib-pinns', import.meta.url));
const hex = randomBytes(3).toString('hex');
const BRIDGE = `cribn${hex}`;
const VETH = `cribv${hex}`;
const VETH2 = `cribw${hex}`;
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
});

afterAll(() => {
  for (const v of [VETH, VETH2]) spawnSync('ip', ['link', 'del', v], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
  for (const dir of pinned) pinns('--remove', dir);
  rmSync(base, { recursive: true, force: true });
  for (const name of [BRIDGE, VETH, VETH2]) expect(linkExists(name)).toBe(false);
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
      [['pod-net', 'detach', '--bridge', BRIDGE], 'pod-net detach: unknown option `--bridge` (only --host-if)'],
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
    // Without --net there is no namespace to attach.
    const noNet = pinns('--dir', dir, '--ipc', ...net);
    expect(noNet.stderr).toContain('--bridge and the other pod network options need --net');
    expect(existsSync(dir)).toBe(false);
  });
});
