// readNetworkStats in a real network namespace, through the real crib-pinns netns-exec.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/errors.js';
import { KernelFileReader } from '../../src/stats/kernel-file-reader.js';
import {
  HostInterfaceTable, parseProcNetDev, POD_TABLE_BYTES, readNetworkStats, readProcessNetworkStats, vethPeerReading,
} from '../../src/stats/network-stats.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatsCollector } from '../../src/stats/stats-collector.js';

const run = promisify(execFile);
const name = `crib-stats-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
const netns = `/run/netns/${name}`;
// A pod-like veth: host end on the host, eth0 inside the namespace (deleted with it).
const hostVeth = `cst${process.pid.toString(16)}`.slice(0, 15);

beforeAll(async () => {
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await run('ip', ['link', 'set', hostVeth, 'up']);
});
afterAll(async () => {
  await run('ip', ['link', 'del', hostVeth]).catch(() => undefined);
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

  it('leaves out a last line cut short', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     336       4    0    0    0     0          0         0      336       4    0    0    0     0       0          0',
      '  eth0: 1 2 3 4 0 0 0 0 999 8 5 6 0 0 0 12',
    ].join('\n');
    // Read to a bound, the table ended inside eth0's line: its last figure may be cut short.
    expect(parseProcNetDev(text).map((i) => i.name)).toEqual(['lo']);
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
    expect(after.interfaces.map((i) => i.name).sort()).toEqual(['eth0', 'lo']);
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

describe('the host end of a pod veth', () => {
  it('shows the pod eth0 counters, receive and transmit swapped', async () => {
    const inNs = (...args: string[]) => run('ip', ['netns', 'exec', name, ...args]);
    await inNs('ip', 'addr', 'add', '10.253.9.1/24', 'dev', 'eth0');
    await inNs('ip', 'link', 'set', 'eth0', 'up');
    await run('ip', ['addr', 'add', '10.253.9.2/24', 'dev', hostVeth]);
    // Traffic both ways: 3 pings out of the pod, answered by the host end.
    await inNs('/bin/busybox', 'ping', '-c', '3', '-i', '0.2', '-W', '5', '10.253.9.2');
    // Counters move with any packet (IPv6 router solicitations...): compare until both agree.
    const reader = new KernelFileReader();
    const table = new HostInterfaceTable(reader);
    let pod, host;
    for (let i = 0; i < 50; i++) {
      pod = (await readNetworkStats(netns)).interfaces.find((x) => x.name === 'eth0')!;
      host = vethPeerReading(await table.read(), hostVeth, 'eth0')!.interfaces[0]!;
      if (pod.rxBytes === host.rxBytes && pod.txBytes === host.txBytes) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(host!.name).toBe('eth0');
    expect(pod!.txPackets).toBeGreaterThanOrEqual(3n);
    expect(pod!.rxPackets).toBeGreaterThanOrEqual(3n);
    expect(host).toEqual(pod);
  });

  it('is what the collector reports for a pod with a veth, without entering its namespace', async () => {
    const collector = new StatsCollector();
    try {
      // The namespace file is one netns-exec cannot enter: only the host-side read can answer.
      const stats = await collector.podSandboxStats({
        attributes: { id: 'p-veth', metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 0 }, labels: {}, annotations: {} },
        netnsPath: '/etc/hostname',
        veth: { host: hostVeth, pod: 'eth0' },
        containers: [],
      });
      const net = stats.linux!.network!;
      expect(net.defaultInterface!.name).toBe('eth0');
      expect(net.interfaces!.map((i) => i.name)).toEqual(['eth0']);
      expect(BigInt(net.defaultInterface!.txBytes!.value as string)).toBeGreaterThan(0n);
      // A host end that is not there: the namespace is asked (and here cannot be read).
      const gone = await collector.podSandboxStats({
        attributes: { id: 'p-gone', metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 0 }, labels: {}, annotations: {} },
        netnsPath: '/etc/hostname',
        veth: { host: `${hostVeth}x`.slice(0, 15) === hostVeth ? 'cribnonexist0' : `${hostVeth}x`, pod: 'eth0' },
        containers: [],
      });
      expect(gone.linux!.network).toBeNull();
    } finally {
      collector.close();
    }
  });
});

describe('the table of a process in the pod', () => {
  it('is the pod namespace table when the process is in it, and nothing when it is not', async () => {
    const child = spawn('ip', ['netns', 'exec', name, '/bin/busybox', 'sleep', '30'], { stdio: 'ignore' });
    const reader = new KernelFileReader({ rememberAbsent: false });
    try {
      const pinned = await stat(netns);
      // `ip netns exec` enters the namespace, then execs sleep under the same pid.
      let reading;
      for (let i = 0; i < 100 && !reading; i++) {
        reading = await readProcessNetworkStats(reader, child.pid!, pinned);
        if (!reading) await new Promise((r) => setTimeout(r, 20));
      }
      expect(reading!.interfaces.map((i) => i.name).sort()).toEqual(['eth0', 'lo']);
      const inside = await readNetworkStats(netns);
      expect(reading!.interfaces.find((i) => i.name === 'lo')!.rxBytes)
        .toBe(inside.interfaces.find((i) => i.name === 'lo')!.rxBytes);
      // This test's own process is on the host: its table is not the pod's.
      expect(await readProcessNetworkStats(reader, process.pid, pinned)).toBeUndefined();
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    // Gone: nothing, no error.
    expect(await readProcessNetworkStats(reader, child.pid!, await stat(netns))).toBeUndefined();
  });
});

// A pod whose containers have CAP_NET_ADMIN can add interfaces to its namespace by the ten
// thousand: its whole table was read and parsed on the daemon's event loop at every reading (20,000
// interfaces: 2.4 MB, 27 ms to read and 45 to parse). Both ways of reading a pod's table stop at
// POD_TABLE_BYTES; the interfaces made first, lo and eth0 among them, are in it.
describe('a pod namespace with thousands of interfaces', () => {
  it('is read no further than POD_TABLE_BYTES, by a process of the pod and from inside', async () => {
    const batch = join(tmpdir(), `${name}.batch`);
    await writeFile(batch, Array.from({ length: 1500 }, (_, i) => `link add va${i} type veth peer name vb${i}\n`).join(''));
    await run('ip', ['-n', name, '-batch', batch]);
    const child = spawn('ip', ['netns', 'exec', name, '/bin/busybox', 'sleep', '30'], { stdio: 'ignore' });
    const reader = new KernelFileReader({ rememberAbsent: false });
    try {
      const whole = (await run('ip', ['netns', 'exec', name, 'cat', '/proc/net/dev'], { maxBuffer: 16 << 20 })).stdout;
      expect(whole.length).toBeGreaterThan(4 * POD_TABLE_BYTES);
      const pinned = await stat(netns);
      let reading;
      for (let i = 0; i < 100 && !reading; i++) {
        reading = await readProcessNetworkStats(reader, child.pid!, pinned);
        if (!reading) await new Promise((r) => setTimeout(r, 20));
      }
      for (const r of [reading!, await readNetworkStats(netns)]) {
        const names = r.interfaces.map((i) => i.name);
        expect(names.slice(0, 2).sort()).toEqual(['eth0', 'lo']);
        // Every line wholly within the bound (the header's two lines first), nothing past it.
        const within = whole.slice(0, POD_TABLE_BYTES).split('\n').length - 3;
        // (±1: lo's and eth0's figures may have grown by a digit between the two reads.)
        expect(Math.abs(names.length - within)).toBeLessThanOrEqual(1);
        expect(names.length).toBeLessThan(3000 / 4);
      }
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
      await rm(batch, { force: true }); // the interfaces go with the namespace (afterAll)
    }
  });
});
