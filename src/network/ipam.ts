// Pod address management (one instance per IP family) for the built-in bridge network. Allocations are keyed by pod id
// and persisted (write-temp+fsync+rename) before an address is handed out, so an address is never
// given to two pods, even across daemon restarts. Addresses are handed out round-robin after the
// last one allocated, so a just-released address is not reused at once (stale ARP and conntrack
// entries for it then have time to expire).
import { DataLossError, InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { log } from '../log.js';
import { formatCidr, formatIp, gatewayOf, parseCidr, parseIp, subnetContains, type Subnet } from './ip-address.js';
import { SerialQueue } from '../lifecycle/keyed-lock.js';
import { defineSchema } from '../store/schema.js';
import { StateFile } from '../store/state-file.js';

interface IpamFile {
  subnet: string;
  /** Last address handed out; the next search starts after it. */
  last?: string;
  allocations: Record<string, string>;
}

/** The on-disk schema of ipam.json and ipam6.json (see store/schema.ts to change it). */
export const IPAM_FILE = defineSchema<IpamFile>('IPAM file');

export class Ipam {
  readonly subnet: Subnet;
  readonly gateway: string;
  private readonly queue = new SerialQueue();
  private state?: { last?: bigint; byPod: Map<string, bigint> };
  private readonly file: StateFile<IpamFile>;

  constructor(path: string, cidr: string) {
    this.file = new StateFile(path, IPAM_FILE);
    this.subnet = parseCidr(cidr);
    this.gateway = this.format(gatewayOf(this.subnet));
  }

  get prefixLength(): number {
    return this.subnet.prefixLength;
  }

  private format(ip: bigint): string {
    return formatIp(this.subnet.family, ip);
  }

  /** The pod's address, allocating one if it has none yet (so a retried setup gets the same). */
  allocate(podId: string): Promise<string> {
    checkPodId(podId);
    return this.queue.run(async () => {
      const state = await this.load();
      const existing = state.byPod.get(podId);
      if (existing !== undefined) return this.format(existing);
      const used = new Set(state.byPod.values());
      // Never the network address (IPv6: subnet-router anycast), the gateway, or the last
      // address (IPv4 broadcast; skipped in IPv6 too, for symmetry).
      const first = this.subnet.network + 2n;
      const lastHost = this.subnet.network + this.subnet.size - 2n;
      const count = lastHost - first + 1n;
      const start = state.last !== undefined && state.last >= first && state.last < lastHost ? state.last + 1n : first;
      // At most used.size + 1 candidates are looked at, even in a /64.
      for (let i = 0n; i < count; i++) {
        const candidate = first + ((start - first + i) % count);
        if (used.has(candidate)) continue;
        state.byPod.set(podId, candidate);
        const previousLast = state.last;
        state.last = candidate;
        try {
          await this.save();
        } catch (err) {
          state.byPod.delete(podId);
          state.last = previousLast;
          throw err;
        }
        return this.format(candidate);
      }
      throw new ResourceExhaustedError(
        `no free address left in pod CIDR ${formatCidr(this.subnet)} (${count} pod addresses, all allocated): ` +
          'remove pods or configure a larger network.pod_cidr',
      );
    });
  }

  /** Free the pod's address; false when it had none. */
  release(podId: string): Promise<boolean> {
    return this.queue.run(async () => {
      const state = await this.load();
      const had = state.byPod.get(podId);
      if (had === undefined) return false;
      state.byPod.delete(podId);
      try {
        await this.save();
      } catch (err) {
        state.byPod.set(podId, had);
        throw err;
      }
      return true;
    });
  }

  get(podId: string): Promise<string | undefined> {
    return this.queue.run(async () => {
      const ip = (await this.load()).byPod.get(podId);
      return ip === undefined ? undefined : this.format(ip);
    });
  }

  /** Every allocation, pod id → address. */
  list(): Promise<Map<string, string>> {
    return this.queue.run(async () => {
      const out = new Map<string, string>();
      for (const [pod, ip] of (await this.load()).byPod) out.set(pod, this.format(ip));
      return out;
    });
  }

  /** Free the addresses of pods that no longer exist (after a crash); returns their ids. */
  reconcile(livePodIds: Iterable<string>): Promise<string[]> {
    const live = new Set(livePodIds);
    return this.queue.run(async () => {
      const state = await this.load();
      const leaked = [...state.byPod.keys()].filter((pod) => !live.has(pod));
      if (leaked.length === 0) return [];
      for (const pod of leaked) state.byPod.delete(pod);
      await this.save();
      log.info({ pods: leaked }, 'ipam: released addresses of pods that no longer exist');
      return leaked;
    });
  }

  /** Forget the in-memory state (after the file was deleted): the next call reloads it. */
  reset(): void {
    this.state = undefined;
  }

  private async load(): Promise<NonNullable<Ipam['state']>> {
    if (this.state) return this.state;
    // The first load runs before this instance wrote anything: leftovers are a crash's.
    await this.file.sweep();
    const raw = await this.file.read();
    const byPod = new Map<string, bigint>();
    let last: bigint | undefined;
    const where = this.file.path;
    if (raw) {
      if (typeof raw.allocations !== 'object' || raw.allocations === null)
        throw new DataLossError(`IPAM file ${where} has no allocations object`);
      const seen = new Set<bigint>();
      for (const [pod, text] of Object.entries(raw.allocations)) {
        const { family, value: ip } = parseIp(text, `IPAM file ${where}: address of pod ${pod}`);
        // A changed pod_cidr orphans addresses outside it; their pods keep working until removed.
        if (!subnetContains(this.subnet, family, ip) || seen.has(ip)) {
          log.warn({ pod, ip: text, cidr: formatCidr(this.subnet) }, 'ipam: dropping an allocation outside the pod CIDR or duplicated');
          continue;
        }
        seen.add(ip);
        byPod.set(pod, ip);
      }
      if (raw.last !== undefined) {
        const l = parseIp(raw.last, `IPAM file ${where}: last`);
        if (subnetContains(this.subnet, l.family, l.value)) last = l.value;
      }
    }
    this.state = { last, byPod };
    return this.state;
  }

  private async save(): Promise<void> {
    const state = this.state!;
    const file: IpamFile = {
      subnet: formatCidr(this.subnet),
      ...(state.last !== undefined ? { last: this.format(state.last) } : {}),
      allocations: Object.fromEntries([...state.byPod].map(([pod, ip]) => [pod, this.format(ip)])),
    };
    await this.file.write(file);
  }
}

export function checkPodId(podId: string): void {
  if (typeof podId !== 'string' || podId.length === 0 || podId.length > 256 || /[\0\n]/.test(podId))
    throw new InvalidArgumentError(`pod id "${String(podId).slice(0, 80)}" is not valid`);
}
