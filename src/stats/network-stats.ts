// Per-interface traffic counters of a pod's network namespace, without a process per pod where
// possible, in this order:
// - /proc/<pid>/net/dev of a process of the pod (a running container's): /proc/<pid>/net shows
//   the network namespace of that process, so this is the pod's own table, every interface
//   included, read by the daemon without entering anything. The pid is trusted only once its
//   namespace is seen to be the pod's pinned one (same nsfs inode), checked after the read, so
//   a pid that died and was reused in between is caught. The file is opened for each read and
//   closed: a kept descriptor would hold the pod's namespace alive after the pod is gone.
// - A pod of the built-in network with no running process has a veth pair whose host end sits in the daemon's own
//   namespace. A veth's receive counters are its peer's transmit counters and the reverse (the
//   kernel counts each packet once, on the sending end, and reports it on both), so the host
//   end's row of the daemon's own /proc/net/dev, rx and tx swapped, is the pod's eth0. One read
//   of that table serves every pod of a listing, with no process and no namespace switch.
// - Any other pod (CNI networks, whose interfaces crib does not know): the daemon never joins a
//   namespace itself (DESIGN.md), so `crib-pinns netns-exec <file> cat /proc/net/dev` reads the
//   table from inside it: /proc/net resolves to the reading process's own namespace.
import { stat } from 'node:fs/promises';
import { errnoCode, NotFoundError } from '../errors.js';
import { nativeBinaries } from '../native-paths.js';
import { runCommand } from '../sys/command.js';
import { nowNs } from '../time.js';
import type { FileIdentity, KernelFileReader } from './kernel-file-reader.js';

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
  // Whole lines only: a table read to a bound (POD_TABLE_BYTES) may end inside one, whose last
  // figure would be cut short.
  const lines = text.split('\n');
  lines.pop();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const cols = line.slice(colon + 1).trim().split(/\s+/);
    if (name === '' || cols.length < 16 || !cols.every((c) => /^\d+$/.test(c))) continue;
    // Only the columns reported become bigints (read for every pod of every listing).
    const n = (i: number) => BigInt(cols[i]!);
    out.push({
      name,
      rxBytes: n(0), rxPackets: n(1), rxErrors: n(2), rxDropped: n(3),
      txBytes: n(8), txPackets: n(9), txErrors: n(10), txDropped: n(11),
    });
  }
  return out;
}

/**
 * The most of a pod's own interface table read (about 500 interfaces). A pod whose containers may
 * add interfaces (CAP_NET_ADMIN in its namespace) can make tens of thousands: 20,000 were 2.4 MB,
 * 27 ms to read and 45 ms to parse on the event loop at every reading. Its loopback and the
 * interface its network gave it were made before any of its containers ran, and the kernel lists
 * interfaces in the order they were made, so they come first; the stats report 16 interfaces at
 * most anyway (server/listed-size.ts).
 */
export const POD_TABLE_BYTES = 64 * 1024;

/** Counters of the interfaces in the network namespace pinned at `netnsPath` (POD_TABLE_BYTES of its table). */
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
  const text = await runCommand(nativeBinaries.pinns, ['netns-exec', netnsPath, 'head', '-c', String(POD_TABLE_BYTES), '/proc/net/dev'], { timeoutMs });
  return { timestamp, interfaces: parseProcNetDev(text) };
}

/** The counters the pod's end of a veth pair shows, from its host end's: receive is transmit. */
export function peerCounters(host: InterfaceCounters, peerName: string): InterfaceCounters {
  return {
    name: peerName,
    rxBytes: host.txBytes, rxPackets: host.txPackets, rxErrors: host.txErrors, rxDropped: host.txDropped,
    txBytes: host.rxBytes, txPackets: host.rxPackets, txErrors: host.rxErrors, txDropped: host.rxDropped,
  };
}

export interface InterfaceTable {
  timestamp: string;
  byName: Map<string, InterfaceCounters>;
}

/**
 * The daemon's own namespace's /proc/net/dev. Every pod of one listing asks at the same moment:
 * they share the read in flight, and a later request reads the table afresh (values are never
 * kept).
 */
export class HostInterfaceTable {
  private inFlight: Promise<InterfaceTable> | undefined;

  constructor(private readonly reader: KernelFileReader) {}

  read(): Promise<InterfaceTable> {
    this.inFlight ??= this.readNow().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async readNow(): Promise<InterfaceTable> {
    const timestamp = nowNs();
    const text = await this.reader.read('/proc/self/net', 'dev', { list: true });
    if (text === undefined) throw new Error('/proc/self/net/dev cannot be read');
    return { timestamp, byName: new Map(parseProcNetDev(text).map((i) => [i.name, i])) };
  }
}

/**
 * The pod's interface at the other end of host veth `hostVeth`, from `table`; undefined when the
 * host end is not there (the pod's namespace, and the veth with it, is gone).
 */
export function vethPeerReading(table: InterfaceTable, hostVeth: string, podInterface: string): NetworkReading | undefined {
  const host = table.byName.get(hostVeth);
  return host === undefined ? undefined : { timestamp: table.timestamp, interfaces: [peerCounters(host, podInterface)] };
}

/**
 * The table (POD_TABLE_BYTES of it) of the namespace process `pid` is in, if that is the namespace pinned at
 * `netnsPath` (whose identity the caller passes: `netns`); undefined when the process is gone
 * or lives elsewhere.
 */
export async function readProcessNetworkStats(
  reader: KernelFileReader, pid: number, netns: FileIdentity,
): Promise<NetworkReading | undefined> {
  // The process must be in the pod's namespace both before and after the read: checked only
  // after, a process entering it meanwhile (a `setns` just after its start) gave the table of
  // the namespace it came from, the host's, as the pod's.
  const timestamp = nowNs();
  const text = await reader.readIfSame(`/proc/${pid}/net`, 'dev', `/proc/${pid}/ns/net`, netns, { list: true, maxBytes: POD_TABLE_BYTES });
  return text === undefined ? undefined : { timestamp, interfaces: parseProcNetDev(text) };
}
