// Per-interface traffic counters of a pod's network namespace. The daemon never joins a
// namespace itself (DESIGN.md), so `crib-pinns netns-exec <file> cat /proc/net/dev` reads the
// kernel's table from inside it: /proc/net resolves to the reading process's own namespace.
import { stat } from 'node:fs/promises';
import { errnoCode, NotFoundError } from '../errors.js';
import { nativeBinaries } from '../native-paths.js';
import { runCommand } from '../sys/command.js';
import { nowNs } from '../time.js';

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxPackets: bigint;
  rxErrors: bigint;
  rxDropped: bigint;
  txBytes: bigint;
  txPackets: bigint;
  txErrors: bigint;
  txDropped: bigint;
}

export interface NetworkReading {
  /** When the table was read, CRI nanoseconds. */
  timestamp: string;
  interfaces: InterfaceCounters[];
}

/**
 * /proc/net/dev → counters, in the kernel's order. After "<name>:" come 8 receive columns
 * (bytes packets errs drop fifo frame compressed multicast) then 8 transmit columns
 * (bytes packets errs drop fifo colls carrier compressed).
 */
export function parseProcNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const cols = line.slice(colon + 1).trim().split(/\s+/);
    if (name === '' || cols.length < 16 || !cols.every((c) => /^\d+$/.test(c))) continue;
    const n = cols.map((c) => BigInt(c));
    out.push({
      name,
      rxBytes: n[0]!, rxPackets: n[1]!, rxErrors: n[2]!, rxDropped: n[3]!,
      txBytes: n[8]!, txPackets: n[9]!, txErrors: n[10]!, txDropped: n[11]!,
    });
  }
  return out;
}

/** Counters of every interface in the network namespace pinned at `netnsPath`. */
export async function readNetworkStats(netnsPath: string, timeoutMs = 10_000): Promise<NetworkReading> {
  try {
    await stat(netnsPath);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`network namespace file ${netnsPath} does not exist (pod stopped?)`);
    }
    throw err;
  }
  const timestamp = nowNs();
  const text = await runCommand(nativeBinaries.pinns, ['netns-exec', netnsPath, 'cat', '/proc/net/dev'], { timeoutMs });
  return { timestamp, interfaces: parseProcNetDev(text) };
}
