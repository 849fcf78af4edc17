// Host ports (hostPort → podIP:containerPort). Each pod with mappings gets its own nftables chain
// `hp-<16 hex of the pod id>` holding its DNAT rules, entered by one `jump` in the shared
// `hostports` chain; teardown deletes exactly that jump and that chain. A dual-stack network
// does the same in its ip6 table, for the pod's IPv6 address. Which pod holds which
// port is persisted beside ipam.json, so a conflict is refused even after a daemon restart.
import { createHash } from 'node:crypto';
import type { PortMapping } from '../gen/runtime/v1/PortMapping.js';
import { AlreadyExistsError, DataLossError, InvalidArgumentError } from '../errors.js';
import { log } from '../log.js';
import { runCommand } from '../sys/command.js';
import { formatIp, isIpv4, isIpv6, parseIp } from './ip-address.js';
import { isMissingNftObject, nft, type NftFamily } from './nft-table.js';
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
  }
  return out;
}

function overlaps(a: HostPortMapping, b: HostPortMapping): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === '' || b.hostIp === '' || a.hostIp === b.hostIp);
}

const familyOf = (ip: string): NftFamily => (isIpv4(ip) ? 'ip' : 'ip6');

function dnatRule(family: NftFamily, table: string, chain: string, podIp: string, m: HostPortMapping): string {
  const daddr = m.hostIp ? `${family} daddr ${m.hostIp} ` : '';
  const to = family === 'ip' ? `${podIp}:${m.containerPort}` : `[${podIp}]:${m.containerPort}`;
  return `add rule ${family} ${table} ${chain} ${daddr}${m.protocol.toLowerCase()} dport ${m.hostPort} dnat to ${to}`;
}

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

  /** Install the pod's mappings (replacing any it had); AlreadyExistsError on a port in use. */
  add(podId: string, ips: PodIps, mappings: readonly HostPortMapping[]): Promise<void> {
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
      const previous = pods.get(podId);
      if (mappings.length === 0) {
        if (previous) await this.removeLocked(podId);
        return;
      }
      pods.set(podId, { ...ips, mappings: [...mappings] });
      try {
        await this.save();
        await this.install(podId, ips, mappings);
      } catch (err) {
        if (previous) pods.set(podId, previous);
        else pods.delete(podId);
        await this.save().catch(() => undefined);
        throw err;
      }
    });
  }

  /** Remove the pod's rules and record; fine when it has none. */
  remove(podId: string): Promise<void> {
    return this.queue.run(() => this.removeLocked(podId));
  }

  get(podId: string): Promise<HostPortMapping[]> {
    return this.queue.run(async () => [...((await this.load()).get(podId)?.mappings ?? [])]);
  }

  /** Drop the mappings of pods that no longer exist; returns their ids. */
  reconcile(livePodIds: Iterable<string>): Promise<string[]> {
    const live = new Set(livePodIds);
    return this.queue.run(async () => {
      const gone = [...(await this.load()).keys()].filter((pod) => !live.has(pod));
      for (const pod of gone) await this.removeLocked(pod);
      return gone;
    });
  }

  /** Forget everything in memory (after the table and the file were deleted). */
  reset(): void {
    this.pods = undefined;
  }

  private async removeLocked(podId: string): Promise<void> {
    const pods = await this.load();
    // A pod's record is saved before its rules are installed and deleted after they are removed,
    // so without a record there are no rules: a pod without host ports costs no `nft` process.
    if (!pods.has(podId)) return;
    await this.uninstall(podId);
    pods.delete(podId);
    await this.save();
  }

  private async jumpHandles(family: NftFamily, chain: string): Promise<number[] | undefined> {
    let listing: string;
    try {
      listing = await runCommand('nft', ['-a', 'list', 'chain', family, this.table, 'hostports']);
    } catch (err) {
      if (isMissingNftObject(err)) return undefined; // no table: nothing of ours is installed
      throw err;
    }
    const handles: number[] = [];
    for (const m of listing.matchAll(/jump (hp-[0-9a-f]+) # handle (\d+)/g)) if (m[1] === chain) handles.push(Number(m[2]));
    return handles;
  }

  private async install(podId: string, ips: PodIps, mappings: readonly HostPortMapping[]): Promise<void> {
    const chain = podChainName(podId);
    const script: string[] = [];
    for (const family of this.families) {
      const podIp = family === 'ip' ? ips.ip : ips.ip6;
      const mine = mappings.filter((m) => m.hostIp === '' || familyOf(m.hostIp) === family);
      const stale = await this.jumpHandles(family, chain);
      if (stale === undefined) throw new InvalidArgumentError(`nftables table ${family} ${this.table} is missing: set up the host network first`);
      const t = `${family} ${this.table}`;
      script.push(...stale.map((h) => `delete rule ${t} hostports handle ${h}`));
      if (podIp === undefined || mine.length === 0) {
        script.push(`add chain ${t} ${chain}`, `flush chain ${t} ${chain}`, `delete chain ${t} ${chain}`);
        continue;
      }
      script.push(
        `add chain ${t} ${chain}`,
        `flush chain ${t} ${chain}`,
        ...mine.map((m) => dnatRule(family, this.table, chain, podIp, m)),
        `add rule ${t} hostports jump ${chain}`,
      );
    }
    // One transaction for both families: the pod's old rules are replaced by the new atomically.
    if (script.length > 0) await nft(`${script.join('\n')}\n`);
  }

  private async uninstall(podId: string): Promise<void> {
    const chain = podChainName(podId);
    const script: string[] = [];
    for (const family of this.families) {
      const handles = await this.jumpHandles(family, chain);
      if (handles === undefined) continue; // no table: nothing of ours is installed
      const t = `${family} ${this.table}`;
      // `add` before `delete` makes deleting a chain that is already gone a no-op.
      script.push(
        ...handles.map((h) => `delete rule ${t} hostports handle ${h}`),
        `add chain ${t} ${chain}`,
        `flush chain ${t} ${chain}`,
        `delete chain ${t} ${chain}`,
      );
    }
    if (script.length > 0) await nft(`${script.join('\n')}\n`);
    log.debug({ pod: podId, chain }, 'host ports removed');
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
