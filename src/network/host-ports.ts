// Host ports (hostPort → podIP:containerPort). Each pod with mappings gets its own nftables chain
// `hp-<16 hex of the pod id>` holding its DNAT rules, entered by one `jump` in the shared
// `hostports` chain; teardown deletes exactly that jump and that chain. A dual-stack network
// does the same in its ip6 table, for the pod's IPv6 address. The rules are made and removed over
// nftables netlink by crib-hostports, which the crib-pinns process that attaches or detaches the
// pod's veth runs (native/pinns/host-ports.c): this module keeps the records and says what
// crib-pinns is to do.
// Which pod holds which port is persisted beside ipam.json, so a conflict is refused even after
// a daemon restart.
import { createHash } from 'node:crypto';
import type { PortMapping } from '../gen/runtime/v1/PortMapping.js';
import { AlreadyExistsError, DataLossError, InvalidArgumentError } from '../errors.js';
import { formatIp, isIpv4, isIpv6, parseIp } from './ip-address.js';
import { nativeBinaries } from '../native-paths.js';
import type { NftFamily } from './nft-table.js';
import { SerialQueue } from '../lifecycle/keyed-lock.js';
import { defineSchema } from '../store/schema.js';
import { StateFile } from '../store/state-file.js';

export type HostPortProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface HostPortMapping {
  protocol: HostPortProtocol;
  hostPort: number;
  containerPort: number;
  /** Empty: every local address. */
  hostIp: string;
}

/** The pod's address in each family the network has. */
export interface PodIps {
  ip: string;
  ip6?: string;
}

interface PodRecord extends PodIps {
  mappings: HostPortMapping[];
}

interface HostPortsFile {
  pods: Record<string, PodRecord>;
}

/** The on-disk schema of hostports.json (see store/schema.ts to change it). */
export const HOST_PORTS_FILE = defineSchema<HostPortsFile>('host ports file');

const PROTOCOLS: Record<string, HostPortProtocol> = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP', 0: 'TCP', 1: 'UDP', 2: 'SCTP' };

export function podChainName(podId: string): string {
  return `hp-${createHash('sha256').update(podId).digest('hex').slice(0, 16)}`;
}

/** crib-pinns takes at most this many (PINNS_MAX_HOSTPORTS); kubelet sends a handful. */
export const MAX_HOST_PORTS = 1024;

const describe = (m: HostPortMapping): string => `${m.hostIp ? `${m.hostIp}:` : ''}${m.hostPort}/${m.protocol}`;

/** Validate CRI port mappings; those without a hostPort (kubelet sends them too) are dropped. */
export function normalizeMappings(input: readonly PortMapping[]): HostPortMapping[] {
  const out: HostPortMapping[] = [];
  for (const pm of input) {
    const hostPort = pm.hostPort ?? 0;
    if (hostPort === 0) continue;
    const protocol = PROTOCOLS[String(pm.protocol ?? 'TCP')];
    if (!protocol) throw new InvalidArgumentError(`port mapping protocol "${String(pm.protocol)}" is not TCP, UDP or SCTP`);
    const containerPort = pm.containerPort ?? 0;
    if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535)
      throw new InvalidArgumentError(`hostPort ${hostPort} is not a port number (1-65535)`);
    if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535)
      throw new InvalidArgumentError(`containerPort ${containerPort} (for hostPort ${hostPort}) is not a port number (1-65535)`);
    let hostIp = pm.hostIp ?? '';
    if (hostIp !== '' && !isIpv4(hostIp) && !isIpv6(hostIp))
      throw new InvalidArgumentError(`hostIP "${hostIp}" of hostPort ${hostPort} is not an IP address`);
    if (hostIp !== '') {
      const { family, value } = parseIp(hostIp);
      hostIp = value === 0n ? '' : formatIp(family, value); // 0.0.0.0 and :: mean every address
    }
    const mapping = { protocol, hostPort, containerPort, hostIp };
    if (out.some((o) => overlaps(o, mapping)))
      throw new InvalidArgumentError(`hostPort ${describe(mapping)} is mapped twice in the same pod`);
    out.push(mapping);
    if (out.length > MAX_HOST_PORTS) throw new InvalidArgumentError(`a pod has at most ${MAX_HOST_PORTS} hostPort mappings`);
  }
  return out;
}

function overlaps(a: HostPortMapping, b: HostPortMapping): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === '' || b.hostIp === '' || a.hostIp === b.hostIp);
}

const familyOf = (ip: string): NftFamily => (isIpv4(ip) ? 'ip' : 'ip6');

export class HostPorts {
  private readonly queue = new SerialQueue();
  private pods?: Map<string, PodRecord>;
  private readonly file: StateFile<HostPortsFile>;

  constructor(
    path: string,
    private readonly table: string,
    /** The families the network has tables for: ['ip'] or ['ip', 'ip6']. */
    private readonly families: readonly NftFamily[] = ['ip'],
  ) {
    this.file = new StateFile(path, HOST_PORTS_FILE);
  }

  /**
   * Record the pod's mappings (replacing any it had; AlreadyExistsError on a port another pod
   * holds) and return the crib-pinns attach options that install them, [] when the pod has none
   * and never had: a pod without host ports costs no nftables work. The record is saved before
   * the rules exist and dropped (forget) only after they are removed, so a pod without a record
   * has no rules.
   */
  reserve(podId: string, ips: PodIps, mappings: readonly HostPortMapping[]): Promise<string[]> {
    for (const m of mappings) {
      if (m.hostIp !== '' && familyOf(m.hostIp) === 'ip6' && ips.ip6 === undefined)
        throw new InvalidArgumentError(`hostIP ${m.hostIp} of hostPort ${m.hostPort} is IPv6, but the pod network has no IPv6 CIDR`);
    }
    return this.queue.run(async () => {
      const pods = await this.load();
      for (const [other, rec] of pods) {
        if (other === podId) continue;
        for (const m of mappings) {
          const clash = rec.mappings.find((o) => overlaps(o, m));
          if (clash) throw new AlreadyExistsError(`hostPort ${describe(m)} is already used by pod ${other} (as ${describe(clash)})`);
        }
      }
      // A retried setup with no ports keeps an empty record: the rules of the earlier try go
      // with the attach (which replaces them by none) or with the teardown.
      if (mappings.length === 0 && !pods.has(podId)) return [];
      const previous = pods.get(podId);
      pods.set(podId, { ...ips, mappings: [...mappings] });
      try {
        await this.save();
      } catch (err) {
        if (previous) pods.set(podId, previous);
        else pods.delete(podId);
        throw err;
      }
      return [...this.tableArgs(podId), ...mappings.flatMap((m) => ['--hostport', `${m.protocol.toLowerCase()}:${m.hostPort}:${m.containerPort}${m.hostIp ? `:${m.hostIp}` : ''}`])];
    });
  }

  /** crib-pinns detach options removing the pod's rules; [] when it has no record (no rules). */
  removalArgs(podId: string): Promise<string[]> {
    return this.queue.run(async () => ((await this.load()).has(podId) ? this.tableArgs(podId) : []));
  }

  /** Drop the pod's record, once its rules are removed (or were never installed); fine without one. */
  forget(podId: string): Promise<void> {
    return this.queue.run(async () => {
      const pods = await this.load();
      if (!pods.delete(podId)) return;
      await this.save();
    });
  }

  get(podId: string): Promise<HostPortMapping[]> {
    return this.queue.run(async () => [...((await this.load()).get(podId)?.mappings ?? [])]);
  }

  /** The pods with a record that are not among livePodIds (to remove after a restart). */
  stale(livePodIds: Iterable<string>): Promise<string[]> {
    const live = new Set(livePodIds);
    return this.queue.run(async () => [...(await this.load()).keys()].filter((pod) => !live.has(pod)));
  }

  /** Forget everything in memory (after the table and the file were deleted). */
  reset(): void {
    this.pods = undefined;
  }

  private tableArgs(podId: string): string[] {
    return ['--nft-helper', nativeBinaries.hostports, '--nft-table', this.table, ...this.families.flatMap((f) => ['--nft-family', f]), '--hostport-chain', podChainName(podId)];
  }

  private async load(): Promise<NonNullable<HostPorts['pods']>> {
    if (this.pods) return this.pods;
    // The first load runs before this instance wrote anything: leftovers are a crash's.
    await this.file.sweep();
    const raw = await this.file.read();
    if (raw && (typeof raw.pods !== 'object' || raw.pods === null)) throw new DataLossError(`host ports file ${this.file.path} has no pods object`);
    this.pods = new Map(Object.entries(raw?.pods ?? {}));
    return this.pods;
  }

  private async save(): Promise<void> {
    await this.file.write({ pods: Object.fromEntries(this.pods ?? []) });
  }
}
