// readNetworkStats in a real network namespace, through the real crib-pinns netns-exec.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/errors.js';
import { parseProcNetDev, readNetworkStats } from '../../src/stats/network-stats.js';

const run = promisify(execFile);
const name = `crib-stats-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
const netns = `/run/netns/${name}`;

beforeAll(async () => {
  await run('ip', ['netns', 'add', name]);
});
afterAll(async () => {
  await run('ip', ['netns', 'delete', name]).catch(() => undefined);
});

describe('parseProcNetDev', () => {
  it('reads receive and transmit columns per interface', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     336       4    0    0    0     0          0         0      336       4    0    0    0     0       0          0',
      '  eth0: 18446744073709551615 12 3 4 0 0 0 0 999 8 5 6 0 0 0 0',
      '',
    ].join('\n');
    expect(parseProcNetDev(text)).toEqual([
      { name: 'lo', rxBytes: 336n, rxPackets: 4n, rxErrors: 0n, rxDropped: 0n,
        txBytes: 336n, txPackets: 4n, txErrors: 0n, txDropped: 0n },
      { name: 'eth0', rxBytes: 18446744073709551615n, rxPackets: 12n, rxErrors: 3n, rxDropped: 4n,
        txBytes: 999n, txPackets: 8n, txErrors: 5n, txDropped: 6n },
    ]);
  });
});

describe('readNetworkStats', () => {
  it('sees loopback traffic made inside the pinned namespace', async () => {
    const before = await readNetworkStats(netns);
    const lo0 = before.interfaces.find((i) => i.name === 'lo');
    expect(lo0).toBeDefined();
    expect(lo0!.rxBytes).toBe(0n); // a fresh namespace: lo is down, nothing sent
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    await run('ip', ['netns', 'exec', name, '/bin/busybox', 'ping', '-c', '3', '-i', '0.2', '-W', '5', '127.0.0.1']);
    const after = await readNetworkStats(netns);
    const lo = after.interfaces.find((i) => i.name === 'lo')!;
    // 3 echo requests + 3 replies of 84 bytes each cross lo both ways.
    expect(lo.rxBytes).toBeGreaterThanOrEqual(6n * 84n);
    expect(lo.rxPackets).toBeGreaterThanOrEqual(6n);
    expect(lo.txBytes).toBe(lo.rxBytes);
    expect(lo.rxErrors).toBe(0n);
    // The host's interfaces are not visible in the pod's namespace.
    expect(after.interfaces.map((i) => i.name)).toEqual(['lo']);
    expect(BigInt(after.timestamp)).toBeGreaterThan(BigInt(before.timestamp));
  });

  it('throws NotFoundError naming a namespace file that is gone', async () => {
    const missing = `/run/netns/${name}-missing`;
    await expect(readNetworkStats(missing)).rejects.toThrow(NotFoundError);
    await expect(readNetworkStats(missing)).rejects.toThrow(missing);
  });

  it('fails with the pinns error for a file that is not a network namespace', async () => {
    await expect(readNetworkStats('/etc/hostname')).rejects.toThrow(/setns .*\/etc\/hostname/);
  });
});
