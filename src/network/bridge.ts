// The host side of the built-in network: one Linux bridge holding the pods' gateway address.
// Everything here is idempotent, because the daemon calls it on every start and on demand.
import { readFile, writeFile } from 'node:fs/promises';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../errors.js';
import { CommandError, runCommand } from '../sys/command.js';

const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export function checkInterfaceName(name: string, what: string): void {
  if (!IFNAME_RE.test(name) || name === '.' || name === '..')
    throw new InvalidArgumentError(`${what} "${name}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
}

interface IpAddrInfo {
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export const isMissingDevice = (err: unknown): boolean =>
  err instanceof CommandError && /does not exist|Cannot find device|No such device/.test(err.stderr);

/** `ip -j -d addr show dev NAME`, or undefined when there is no such device. */
export async function showLink(name: string): Promise<IpAddrInfo | undefined> {
  try {
    const out = JSON.parse(await runCommand('ip', ['-j', '-d', 'addr', 'show', 'dev', name])) as IpAddrInfo[];
    return out[0];
  } catch (err) {
    if (isMissingDevice(err)) return undefined;
    throw err;
  }
}

/** Names of the interfaces enslaved to a bridge (the pods' host-side veths). */
export async function bridgePorts(bridge: string): Promise<string[]> {
  try {
    const out = JSON.parse(await runCommand('ip', ['-j', 'link', 'show', 'master', bridge])) as { ifname: string }[];
    return out.map((l) => l.ifname);
  } catch (err) {
    if (isMissingDevice(err)) return [];
    throw err;
  }
}

export async function writeSysctl(key: string, value: string): Promise<void> {
  const path = `/proc/sys/${key.replaceAll('.', '/')}`;
  // Writing an unchanged value still costs a netdev notifier round in some kernels: skip it.
  if ((await readFile(path, 'utf8')).trim() === value) return;
  await writeFile(path, value);
}

/**
 * Make sure the bridge exists, carries gateway/prefix, and is up. route_localnet lets the host
 * reach hostPorts through 127.0.0.1: after DNAT such packets leave via the bridge with a
 * loopback source, which the kernel otherwise drops as martian.
 */
export interface GatewayAddress {
  family: 4 | 6;
  ip: string;
  prefixLength: number;
}

export async function ensureBridge(name: string, gateways: readonly GatewayAddress[]): Promise<void> {
  checkInterfaceName(name, 'bridge name');
  let link = await showLink(name);
  if (!link) {
    try {
      await runCommand('ip', ['link', 'add', 'name', name, 'type', 'bridge']);
    } catch (err) {
      // Another caller made it between our look and our add: fine.
      if (!(err instanceof CommandError && /File exists/.test(err.stderr))) throw err;
    }
    link = await showLink(name);
  }
  if (!link) throw new InvalidArgumentError(`bridge ${name} vanished while being set up`);
  if (link.linkinfo?.info_kind !== undefined && link.linkinfo.info_kind !== 'bridge')
    throw new InvalidArgumentError(`network.bridge "${name}" exists but is a ${link.linkinfo.info_kind}, not a bridge`);
  for (const gw of gateways) {
    const family = gw.family === 4 ? 'inet' : 'inet6';
    const has = (link.addr_info ?? []).some((a) => a.family === family && a.local === gw.ip && a.prefixlen === gw.prefixLength);
    if (has) continue;
    // nodad: duplicate address detection would hold the IPv6 gateway "tentative" for ~1 s.
    const args = ['addr', 'add', `${gw.ip}/${gw.prefixLength}`, 'dev', name, ...(gw.family === 6 ? ['nodad'] : [])];
    try {
      await runCommand('ip', args);
    } catch (err) {
      if (!(err instanceof CommandError && /File exists/.test(err.stderr))) throw err;
    }
  }
  if (!link.flags.includes('UP')) await runCommand('ip', ['link', 'set', 'dev', name, 'up']);
  await writeSysctl(`net.ipv4.conf.${name}.route_localnet`, '1');
}

export async function deleteLink(name: string): Promise<boolean> {
  try {
    await runCommand('ip', ['link', 'del', 'dev', name]);
    return true;
  } catch (err) {
    if (isMissingDevice(err)) return false;
    throw err;
  }
}

/**
 * Forwarding must be on for pods to reach anything beyond the bridge. IPv6 forwarding is only
 * turned on for a dual-stack network: it also stops the host from accepting router adverts.
 */
export async function enableIpForwarding(ipv6: boolean): Promise<void> {
  const keys = ['net.ipv4.ip_forward', ...(ipv6 ? ['net.ipv6.conf.all.forwarding'] : [])];
  for (const key of keys) {
    try {
      await writeSysctl(key, '1');
    } catch (err) {
      throw new FailedPreconditionError(`cannot enable ${key} (${errnoCode(err) ?? (err as Error).message})`, { cause: err });
    }
  }
}
