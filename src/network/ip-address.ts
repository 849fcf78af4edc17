// IPv4 and IPv6 addresses as bigints, and the subnet arithmetic IPAM needs, for both families.
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError } from '../errors.js';

export type IpFamily = 4 | 6;

export interface Subnet {
  family: IpFamily;
  /** Network address. */
  network: bigint;
  prefixLength: number;
  /** Number of addresses in the subnet. */
  size: bigint;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

export const isIpv4 = (text: string): boolean => isIPv4(text);
export const isIpv6 = (text: string): boolean => isIPv6(text) && !text.includes('%');

export function parseIp(text: string, what = 'address'): { family: IpFamily; value: bigint } {
  // node:net refuses leading zeros in IPv4 ("010.0.0.1": octal or decimal?), as we want.
  if (isIpv4(text)) {
    return { family: 4, value: text.split('.').reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (isIpv6(text)) {
    let t = text;
    // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hex groups.
    const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(t);
    if (v4) {
      const n = parseIp(v4[2]!, what).value;
      t = `${v4[1]}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
    }
    const [head, tail] = t.includes('::') ? t.split('::') : [t, undefined];
    const h = head ? head.split(':') : [];
    const tl = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
    return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n) };
  }
  throw new InvalidArgumentError(`${what} "${text}" is not an IP address`);
}

/** Canonical text (RFC 5952 for IPv6: lowercase, longest zero run compressed). */
export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** "10.88.0.0/16" or "fd88::/64": the address must be the network address. */
export function parseCidr(text: string, what = 'pod CIDR'): Subnet {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) throw new InvalidArgumentError(`${what} "${text}" is not a CIDR like 10.88.0.0/16 or fd88::/64`);
  const { family, value } = parseIp(m[1]!, what);
  const prefixLength = Number(m[2]);
  const [min, max] = family === 4 ? [8, 30] : [64, 126];
  if (prefixLength < min || prefixLength > max)
    throw new InvalidArgumentError(`${what} "${text}": prefix length must be between /${min} and /${max}`);
  const size = 1n << BigInt(BITS[family] - prefixLength);
  if (value % size !== 0n)
    throw new InvalidArgumentError(
      `${what} "${text}" has host bits set (did you mean ${formatIp(family, value - (value % size))}/${prefixLength}?)`,
    );
  return { family, network: value, prefixLength, size };
}

export function subnetContains(subnet: Subnet, family: IpFamily, addr: bigint): boolean {
  return family === subnet.family && addr >= subnet.network && addr < subnet.network + subnet.size;
}

export function formatCidr(subnet: Subnet): string {
  return `${formatIp(subnet.family, subnet.network)}/${subnet.prefixLength}`;
}

/** The gateway (bridge) address: the first host of the subnet. */
export function gatewayOf(subnet: Subnet): bigint {
  return subnet.network + 1n;
}
