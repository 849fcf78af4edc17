// Built-in pod networking: a bridge, a veth per pod, IPAM, outbound NAT and host ports. The host
// side (bridge, forwarding, nftables table) is made on demand and idempotently; per pod, setup
// acquires address → host-port record → veth with its host-port rules (one crib-pinns process)
// and undoes what it acquired when a later step fails; teardown releases them in the opposite
// order in the background: rules and veth (one crib-pinns process), record, addresses.
import { access, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { CribConfig } from '../config/config.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, ResourceExhaustedError } from '../errors.js';
import { log } from '../log.js';
import { bridgePorts, checkInterfaceName, deleteLink, enableIpForwarding, ensureBridge, isMissingDevice, showLink } from './bridge.js';
import { HostPorts, normalizeMappings, type HostPortMapping } from './host-ports.js';
import { Ipam, checkPodId } from './ipam.js';
import { formatCidr, isIpv6 } from './ip-address.js';
import { checkTableName, deleteNftTable, ensureNftTable } from './nft-table.js';
import type { PodNetworkStatus, PodNetworking, PodSetupOptions, PreparedAttach } from './pod-networking.js';
import { KeyedLock } from '../lifecycle/keyed-lock.js';
import { POD_INTERFACE, attachPod, detachPod, hostVethName, podNetArgs, type AttachOptions, type PodAddress } from './veth.js';

export interface PodNetworkOptions {
  /** crib's root dir; state goes to <root>/network/. */
  root: string;
  bridge?: string;
  podCidr?: string;
  /** Optional IPv6 pod CIDR (e.g. fd88::/64): makes the network dual-stack. */
  podCidr6?: string;
  mtu?: number;
  /** nftables table (family ip) owned by this network. */
  nftTable?: string;
}

export type { PodNetworkStatus, PodSetupOptions } from './pod-networking.js';

export class PodNetwork implements PodNetworking {
  readonly bridge: string;
  readonly mtu: number;
  readonly nftTable: string;
  readonly stateDir: string;
  private readonly ipam: Ipam;
  private readonly ipam6?: Ipam;
  private readonly hostPorts: HostPorts;
  private hostReady?: Promise<void>;
  private readonly perPod = new KeyedLock();
  /** Pods whose host-port and veth delete and address release teardown() left running, by pod id. */
  private readonly releasing = new Map<string, Promise<void>>();

  constructor(opts: PodNetworkOptions) {
    this.bridge = opts.bridge ?? 'crib0';
    this.mtu = opts.mtu ?? 1500;
    this.nftTable = opts.nftTable ?? 'crib';
    checkInterfaceName(this.bridge, 'network.bridge');
    checkTableName(this.nftTable);
    this.stateDir = join(opts.root, 'network');
    this.ipam = new Ipam(join(this.stateDir, 'ipam.json'), opts.podCidr ?? '10.88.0.0/16');
    if (this.ipam.subnet.family !== 4) throw new InvalidArgumentError(`network.pod_cidr "${opts.podCidr}" must be IPv4 (put IPv6 in the IPv6 CIDR)`);
    if (opts.podCidr6 !== undefined) {
      this.ipam6 = new Ipam(join(this.stateDir, 'ipam6.json'), opts.podCidr6);
      if (this.ipam6.subnet.family !== 6) throw new InvalidArgumentError(`IPv6 pod CIDR "${opts.podCidr6}" is not IPv6`);
    }
    this.hostPorts = new HostPorts(join(this.stateDir, 'hostports.json'), this.nftTable, this.ipam6 ? ['ip', 'ip6'] : ['ip']);
  }

  /** The network the daemon's config describes ([network] bridge, pod_cidr, mtu; root). */
  static fromConfig(config: CribConfig): PodNetwork {
    const n = config.network;
    return new PodNetwork({ root: config.root, bridge: n.bridge, podCidr: n.pod_cidr, podCidr6: n.pod_cidr_v6, mtu: n.mtu, nftTable: n.nft_table });
  }

  get podCidr(): string {
    return formatCidr(this.ipam.subnet);
  }

  get gateway(): string {
    return this.ipam.gateway;
  }

  get podCidr6(): string | undefined {
    return this.ipam6 ? formatCidr(this.ipam6.subnet) : undefined;
  }

  private podAddresses(ip: string, ip6: string | undefined): PodAddress[] {
    const out: PodAddress[] = [{ family: 4, ip, prefixLength: this.ipam.prefixLength, gateway: this.ipam.gateway }];
    if (this.ipam6 && ip6 !== undefined) out.push({ family: 6, ip: ip6, prefixLength: this.ipam6.prefixLength, gateway: this.ipam6.gateway });
    return out;
  }

  private statusOf(podId: string, ip: string, ip6: string | undefined, portMappings: HostPortMapping[]): PodNetworkStatus {
    return {
      ip,
      prefixLength: this.ipam.prefixLength,
      gateway: this.gateway,
      ...(this.ipam6 && ip6 !== undefined ? { ip6, prefixLength6: this.ipam6.prefixLength, gateway6: this.ipam6.gateway } : {}),
      interface: POD_INTERFACE,
      hostInterface: hostVethName(podId),
      portMappings,
    };
  }

  /** Bridge with the gateway address, IP forwarding, and the nftables table; once per instance. */
  ensureHost(): Promise<void> {
    this.hostReady ??= (async () => {
      const gateways = this.podAddresses(this.gateway, this.ipam6?.gateway).map((a) => ({ family: a.family, ip: a.gateway, prefixLength: a.prefixLength }));
      await ensureBridge(this.bridge, gateways);
      await enableIpForwarding(this.ipam6 !== undefined);
      await ensureNftTable(this.nftTable, 'ip', this.podCidr);
      if (this.ipam6) await ensureNftTable(this.nftTable, 'ip6', formatCidr(this.ipam6.subnet));
    })().catch((err: unknown) => {
      this.hostReady = undefined; // let the next pod retry
      throw err;
    });
    return this.hostReady;
  }

  /** Arguments every setup checks before anything is made; the pod's host-port mappings. */
  private checkSetup(podId: string, opts: PodSetupOptions): HostPortMapping[] {
    checkPodId(podId);
    const mappings = normalizeMappings(opts.portMappings ?? []);
    const v6HostIp = mappings.find((m) => isIpv6(m.hostIp));
    if (v6HostIp && !this.ipam6)
      throw new InvalidArgumentError(`hostIP ${v6HostIp.hostIp} of hostPort ${v6HostIp.hostPort} is IPv6, but the pod network has no IPv6 CIDR`);
    return mappings;
  }

  /** The pod's addresses, allocated (the same ones again for a retried setup). */
  private async allocate(podId: string): Promise<{ ip: string; ip6?: string }> {
    const ip = await this.allocateFrom(this.ipam, podId);
    try {
      const ip6 = this.ipam6 && (await this.allocateFrom(this.ipam6, podId));
      return ip6 === undefined ? { ip } : { ip, ip6 };
    } catch (err) {
      await this.ipam.release(podId).catch((e: unknown) => log.warn({ pod: podId, err: e }, 'pod network: rollback step failed'));
      throw err;
    }
  }

  /** A full range may only be waiting for veths being deleted: their addresses follow. */
  private async allocateFrom(ipam: Ipam, podId: string): Promise<string> {
    try {
      return await ipam.allocate(podId);
    } catch (err) {
      // Not this pod's own release: it would be queued behind this call on the pod's lock.
      const others = [...this.releasing].filter(([id]) => id !== podId).map(([, p]) => p);
      if (!(err instanceof ResourceExhaustedError) || others.length === 0) throw err;
      await Promise.all(others);
      return ipam.allocate(podId);
    }
  }

  /** A host port held by a pod being torn down is free once its release (which removes its rules) ends. */
  private async reservePorts(podId: string, ips: { ip: string; ip6?: string }, mappings: readonly HostPortMapping[]): Promise<string[]> {
    try {
      return await this.hostPorts.reserve(podId, ips, mappings);
    } catch (err) {
      // Not this pod's own release: it would be queued behind this call on the pod's lock.
      const others = [...this.releasing].filter(([id]) => id !== podId).map(([, p]) => p);
      if (!(err instanceof AlreadyExistsError) || others.length === 0) throw err;
      await Promise.all(others);
      return this.hostPorts.reserve(podId, ips, mappings);
    }
  }

  private async releaseAddresses(podId: string): Promise<void> {
    await this.ipam.release(podId);
    await this.ipam6?.release(podId);
  }

  private attachOptions(podId: string, ips: { ip: string; ip6?: string }): AttachOptions {
    return { podId, bridge: this.bridge, addresses: this.podAddresses(ips.ip, ips.ip6), mtu: this.mtu };
  }

  /**
   * The RunPodSandbox path: addresses and the host-port record now; the veth and the host-port
   * rules by crib-pinns while it pins the pod's namespaces (pod-networking.ts). The caller undoes
   * a failure from here on with teardown().
   */
  async prepareAttach(podId: string, opts: PodSetupOptions = {}): Promise<PreparedAttach> {
    const mappings = this.checkSetup(podId, opts);
    await this.ensureHost();
    // The bridge removed behind our back (an operator, an uninstall): make it again. A look at
    // sysfs, not an `ip` process; a removal racing with this fails the pinning, and kubelet retries.
    if (!(await access(`/sys/class/net/${this.bridge}/bridge`).then(() => true, () => false))) {
      this.hostReady = undefined;
      await this.ensureHost();
    }
    // A release of this pod still running ends first (awaited outside the pod's lock, which
    // the release itself takes).
    await this.releasing.get(podId);
    const { ips, portArgs } = await this.perPod.run(podId, async () => {
      const ips = await this.allocate(podId);
      try {
        return { ips, portArgs: await this.reservePorts(podId, ips, mappings) };
      } catch (err) {
        await this.releaseAddresses(podId).catch((e: unknown) => log.warn({ pod: podId, err: e }, 'pod network: rollback step failed'));
        throw err;
      }
    });
    return {
      pinnsArgs: [...podNetArgs(this.attachOptions(podId, ips)), ...portArgs],
      ip: ips.ip,
      finish: (_netnsPath: string) => {
        log.info({ pod: podId, ...ips, hostInterface: hostVethName(podId), hostname: opts.hostname, ports: mappings.length }, 'pod network set up');
        return Promise.resolve(this.statusOf(podId, ips.ip, ips.ip6, mappings));
      },
    };
  }

  /** Attach a pod whose namespace is already pinned (crib-pinns pod-net attach). */
  async setup(podId: string, netnsPath: string, opts: PodSetupOptions = {}): Promise<PodNetworkStatus> {
    const mappings = this.checkSetup(podId, opts);
    if (!isAbsolute(netnsPath)) throw new InvalidArgumentError(`network namespace path "${netnsPath}" is not absolute`);
    await access(netnsPath).catch((err: unknown) => {
      throw new NotFoundError(`network namespace ${netnsPath} of pod ${podId} does not exist`, { cause: err });
    });
    await this.ensureHost();
    await this.releasing.get(podId); // outside the lock, as in prepareAttach
    return this.perPod.run(podId, () => this.setupLocked(podId, netnsPath, mappings, opts.hostname));
  }

  private async setupLocked(podId: string, netnsPath: string, mappings: HostPortMapping[], hostname: string | undefined): Promise<PodNetworkStatus> {
    const undo: (() => Promise<unknown>)[] = [];
    try {
      const ips = await this.allocate(podId);
      undo.push(() => this.releaseAddresses(podId));
      const portArgs = await this.reservePorts(podId, ips, mappings);
      // Before the addresses' release (undo runs in reverse): an address outlives its veth. A
      // failed attach left nothing, but a retried setup's earlier rules and veth may be there.
      undo.push(async () => {
        await detachPod(podId, await this.hostPorts.removalArgs(podId)).done;
        await this.hostPorts.forget(podId);
      });
      const attach = () => attachPod(netnsPath, this.attachOptions(podId, ips), portArgs);
      let hostInterface: string;
      try {
        hostInterface = await attach();
      } catch (err) {
        // The bridge was removed behind our back (an operator, an uninstall): make it again, once.
        if (!isMissingDevice(err) || (await showLink(this.bridge)) !== undefined) throw err;
        this.hostReady = undefined;
        await this.ensureHost();
        hostInterface = await attach();
      }
      log.info({ pod: podId, ...ips, hostInterface, hostname, ports: mappings.length }, 'pod network set up');
      return this.statusOf(podId, ips.ip, ips.ip6, mappings);
    } catch (err) {
      for (const step of undo.reverse()) {
        await step().catch((e: unknown) => log.warn({ pod: podId, err: e }, 'pod network: rollback step failed'));
      }
      throw err;
    }
  }

  /**
   * Remove the pod's host-port rules now; its veth and then its host ports and addresses in the
   * background, all by one crib-pinns that reports the rules gone before it deletes the veth.
   * Deleting a veth waits in the kernel for an RCU barrier (15-30 ms), which no RPC should wait
   * for: the pod has no network once its host-port rules are gone and its processes stopped, and
   * status() reports none. A port or an address is freed only once the rule or veth using it is
   * gone, so neither is handed to a new pod while the old one could still receive its traffic; a
   * new pod asking for either waits for the release (reservePorts, allocateFrom). A crash
   * meanwhile is finished by reconcile() at start-up. Idempotent, and fine when the pod's network
   * namespace is already gone (its end of the veth went with it); netnsPath is not needed.
   */
  async teardown(podId: string, _netnsPath?: string): Promise<void> {
    checkPodId(podId);
    if (this.releasing.has(podId)) return;
    let portsRemoved: (err?: unknown) => void = () => undefined;
    const ports = new Promise<void>((resolve, reject) => (portsRemoved = (err) => (err === undefined ? resolve() : reject(err))));
    const release = this.perPod.run(podId, async () => {
      const detach = detachPod(podId, await this.hostPorts.removalArgs(podId));
      detach.portsRemoved.then(() => portsRemoved(), portsRemoved);
      await detach.done;
      await this.hostPorts.forget(podId);
      await this.releaseAddresses(podId);
      log.info({ pod: podId }, 'pod network torn down');
    }).catch((err: unknown) => {
      portsRemoved(err); // a no-op once the rules were reported gone
      // Kept: the rules or the veth may still exist. A later teardown (RemovePodSandbox after
      // StopPodSandbox) tries again; the next start's reconcile() frees them.
      log.error({ pod: podId, err }, 'pod network: removing the host ports or the veth failed; its host ports and addresses stay allocated until a retry or the daemon restarts');
    }).finally(() => this.releasing.delete(podId));
    this.releasing.set(podId, release);
    // A failure to remove the rules fails the call (kubelet retries it), as before the release.
    await ports;
  }

  /** Wait for the background releases teardown() started (tests, reconcile, cleanup). */
  async settle(): Promise<void> {
    while (this.releasing.size > 0) await Promise.all([...this.releasing.values()]);
  }

  async status(podId: string): Promise<PodNetworkStatus | undefined> {
    if (this.releasing.has(podId)) return undefined; // torn down; the address is not reusable yet
    const ip = await this.ipam.get(podId);
    if (ip === undefined) return undefined;
    return this.statusOf(podId, ip, await this.ipam6?.get(podId), await this.hostPorts.get(podId));
  }

  /** After a restart: free addresses, host ports and veths of pods that no longer exist. */
  async reconcile(livePodIds: Iterable<string>): Promise<string[]> {
    const live = [...livePodIds];
    await this.settle();
    // Veths first: an address is free only once no veth carries it.
    const wanted = new Set(live.map(hostVethName));
    for (const port of await bridgePorts(this.bridge)) {
      if (port.startsWith('crib') && !wanted.has(port)) {
        await deleteLink(port);
        log.info({ veth: port }, 'pod network: removed a veth of a pod that no longer exists');
      }
    }
    // Rules before their records, as in teardown (the pod's veth is gone already: fine).
    const stalePorts = await this.hostPorts.stale(live);
    for (const pod of stalePorts) {
      await detachPod(pod, await this.hostPorts.removalArgs(pod)).done;
      await this.hostPorts.forget(pod);
    }
    const freed = new Set([...(await this.ipam.reconcile(live)), ...((await this.ipam6?.reconcile(live)) ?? []), ...stalePorts]);
    return [...freed];
  }

  /** Remove everything this network made on the host, and its state (tests, uninstall). */
  async cleanupAll(): Promise<void> {
    await this.settle();
    for (const port of await bridgePorts(this.bridge)) await deleteLink(port);
    await deleteLink(this.bridge);
    await deleteNftTable(this.nftTable, 'ip');
    await deleteNftTable(this.nftTable, 'ip6'); // even if this instance is IPv4-only: a past one may not have been
    await rm(join(this.stateDir, 'ipam.json'), { force: true });
    await rm(join(this.stateDir, 'ipam6.json'), { force: true });
    await rm(join(this.stateDir, 'hostports.json'), { force: true });
    this.hostPorts.reset();
    this.ipam.reset();
    this.ipam6?.reset();
    this.hostReady = undefined;
  }
}
