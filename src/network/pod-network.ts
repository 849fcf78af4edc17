// Built-in pod networking: a bridge, a veth per pod, IPAM, outbound NAT and host ports. The host
// side (bridge, forwarding, nftables table) is made on demand and idempotently; per pod, setup
// acquires address → veth → host ports and undoes what it acquired when a later step fails.
import { access, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { CribConfig } from '../config/config.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { log } from '../log.js';
import { bridgePorts, checkInterfaceName, deleteLink, enableIpForwarding, ensureBridge, isMissingDevice, showLink } from './bridge.js';
import { HostPorts, normalizeMappings, type HostPortMapping } from './host-ports.js';
import { Ipam, checkPodId } from './ipam.js';
import { formatCidr, isIpv6 } from './ip-address.js';
import { checkTableName, deleteNftTable, ensureNftTable } from './nft-table.js';
import type { PodNetworkStatus, PodNetworking, PodSetupOptions } from './pod-networking.js';
import { KeyedLock } from '../lifecycle/keyed-lock.js';
import { POD_INTERFACE, attachPod, detachPod, hostVethName, type PodAddress } from './veth.js';

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

  async setup(podId: string, netnsPath: string, opts: PodSetupOptions = {}): Promise<PodNetworkStatus> {
    checkPodId(podId);
    const mappings = normalizeMappings(opts.portMappings ?? []);
    const v6HostIp = mappings.find((m) => isIpv6(m.hostIp));
    if (v6HostIp && !this.ipam6)
      throw new InvalidArgumentError(`hostIP ${v6HostIp.hostIp} of hostPort ${v6HostIp.hostPort} is IPv6, but the pod network has no IPv6 CIDR`);
    if (!isAbsolute(netnsPath)) throw new InvalidArgumentError(`network namespace path "${netnsPath}" is not absolute`);
    await access(netnsPath).catch((err: unknown) => {
      throw new NotFoundError(`network namespace ${netnsPath} of pod ${podId} does not exist`, { cause: err });
    });
    await this.ensureHost();
    return this.perPod.run(podId, () => this.setupLocked(podId, netnsPath, mappings, opts.hostname));
  }

  private async setupLocked(podId: string, netnsPath: string, mappings: HostPortMapping[], hostname: string | undefined): Promise<PodNetworkStatus> {
    const undo: (() => Promise<unknown>)[] = [];
    try {
      const ip = await this.ipam.allocate(podId);
      undo.push(() => this.ipam.release(podId));
      let ip6: string | undefined;
      if (this.ipam6) {
        const ipam6 = this.ipam6;
        ip6 = await ipam6.allocate(podId);
        undo.push(() => ipam6.release(podId));
      }
      const attach = () =>
        attachPod({ podId, netnsPath, bridge: this.bridge, addresses: this.podAddresses(ip, ip6), mtu: this.mtu });
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
      undo.push(() => detachPod(podId));
      await this.hostPorts.add(podId, { ip, ...(ip6 !== undefined ? { ip6 } : {}) }, mappings);
      log.info({ pod: podId, ip, ip6, hostInterface, hostname, ports: mappings.length }, 'pod network set up');
      return this.statusOf(podId, ip, ip6, mappings);
    } catch (err) {
      for (const step of undo.reverse()) {
        await step().catch((e: unknown) => log.warn({ pod: podId, err: e }, 'pod network: rollback step failed'));
      }
      throw err;
    }
  }

  /**
   * Remove the pod's host ports, veth and address. Idempotent, and fine when the pod's network
   * namespace is already gone (its end of the veth went with it); netnsPath is not needed.
   */
  async teardown(podId: string, _netnsPath?: string): Promise<void> {
    checkPodId(podId);
    await this.perPod.run(podId, async () => {
      await this.hostPorts.remove(podId);
      await detachPod(podId);
      await this.ipam.release(podId);
      await this.ipam6?.release(podId);
    });
    log.info({ pod: podId }, 'pod network torn down');
  }

  async status(podId: string): Promise<PodNetworkStatus | undefined> {
    const ip = await this.ipam.get(podId);
    if (ip === undefined) return undefined;
    return this.statusOf(podId, ip, await this.ipam6?.get(podId), await this.hostPorts.get(podId));
  }

  /** After a restart: free addresses, host ports and veths of pods that no longer exist. */
  async reconcile(livePodIds: Iterable<string>): Promise<string[]> {
    const live = [...livePodIds];
    const freed = new Set([
      ...(await this.ipam.reconcile(live)),
      ...((await this.ipam6?.reconcile(live)) ?? []),
      ...(await this.hostPorts.reconcile(live)),
    ]);
    const wanted = new Set(live.map(hostVethName));
    for (const port of await bridgePorts(this.bridge)) {
      if (port.startsWith('crib') && !wanted.has(port)) {
        await deleteLink(port);
        log.info({ veth: port }, 'pod network: removed a veth of a pod that no longer exists');
      }
    }
    return [...freed];
  }

  /** Remove everything this network made on the host, and its state (tests, uninstall). */
  async cleanupAll(): Promise<void> {
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
