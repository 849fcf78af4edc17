// Pod networking through CNI plugins (the containernetworking spec, versions 0.3.0-1.0.0):
// ADD runs the list's plugins in order, each given the previous one's result; the final result
// is cached under <root>/network/cni/ before setup returns, because DEL must be handed it and
// status reads the pod's addresses from it. DEL runs the plugins in reverse and is idempotent.
import { createHash } from 'node:crypto';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { log } from '../log.js';
import { loadCniConfig, type CniNetworkConfigList } from './cni-config.js';
import { invokePlugin, type CniCommand } from './cni-plugin.js';
import { normalizeMappings, type HostPortMapping } from './host-ports.js';
import { isIpv4 } from './ip-address.js';
import type { PodNetworkStatus, PodNetworking, PodSetupOptions } from './pod-networking.js';
import { SerialQueue } from '../lifecycle/keyed-lock.js';
import { sweepInterruptedWrites } from '../store/atomic-file.js';
import { defineSchema } from '../store/schema.js';
import { StateFile } from '../store/state-file.js';

export interface CniNetworkOptions {
  /** crib's root dir; cached results go to <root>/network/cni/. */
  root: string;
  /** Where the network config lives (first *.conflist/*.conf/*.json by name). */
  confDir?: string;
  binDirs?: readonly string[];
  ifName?: string;
}

interface CniIp {
  address: string;
  gateway?: string;
}

interface CniResult {
  cniVersion?: string;
  ips?: CniIp[];
  /** 0.2.0 results */
  ip4?: { ip: string; gateway?: string };
  ip6?: { ip: string; gateway?: string };
}

interface CachedPod {
  podId: string;
  /** For DEL from reconcile: plugins such as bridge find what to clean (ipMasq rules) in it. */
  netns?: string;
  network: string;
  ifName: string;
  args: string;
  portMappings: HostPortMapping[];
  result: CniResult;
  /** The config the pod was added with: DEL must use it (the spec: no change between add and
   * delete), whatever the config dir holds by then. Absent in caches written before it was kept. */
  config?: CniNetworkConfigList;
}

/** The on-disk schema of network/cni/<sha256 of the pod id>.json (see store/schema.ts to change it). */
export const CNI_RESULT_FILE = defineSchema<CachedPod>('CNI result cache');

const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
/**
 * What a CNI_ARGS value may hold. CNI_ARGS is "K=V;K=V" with no escaping: a ';' or '=' in a pod
 * name would add or override arguments (K8S_POD_NAME=x;IgnoreUnknown=0;...). RunPodSandbox
 * already refuses such names; this is the last check before the plugin sees them.
 */
const CNI_ARG_VALUE_RE = /^[A-Za-z0-9._-]{1,253}$/;

/** CNI_ARGS from key/value pairs, refusing any value that could inject another pair. */
export function cniArgs(pairs: ReadonlyArray<readonly [string, string]>): string {
  for (const [key, value] of pairs) {
    if (!CNI_ARG_VALUE_RE.test(value)) {
      throw new InvalidArgumentError(`CNI_ARGS ${key} ${JSON.stringify(value.slice(0, 80))} must be 1-253 letters, digits, '.', '_' or '-'`);
    }
  }
  return pairs.map(([k, v]) => `${k}=${v}`).join(';');
}

function addressesOf(result: CniResult): { ip: string; prefixLength: number; gateway: string }[] {
  const ips: CniIp[] = result.ips ?? [result.ip4, result.ip6].flatMap((x) => (x ? [{ address: x.ip, gateway: x.gateway }] : []));
  return ips.map((a) => {
    const [ip, prefix] = a.address.split('/');
    return { ip: ip!, prefixLength: Number(prefix), gateway: a.gateway ?? '' };
  });
}

export class CniNetwork implements PodNetworking {
  private readonly confDir: string;
  private readonly binDirs: readonly string[];
  private readonly ifName: string;
  private readonly cacheDir: string;
  // One pod's ADD and DEL must not interleave; different pods' may run concurrently, but the
  // plugins' own locking is not trusted across crib's calls, so everything is serialised.
  private readonly queue = new SerialQueue();

  constructor(opts: CniNetworkOptions) {
    this.confDir = opts.confDir ?? '/etc/cni/net.d';
    this.binDirs = opts.binDirs ?? ['/opt/cni/bin', '/usr/lib/cni'];
    this.ifName = opts.ifName ?? 'eth0';
    this.cacheDir = join(opts.root, 'network', 'cni');
  }

  private cacheFile(podId: string): StateFile<CachedPod> {
    return this.cacheFileAt(join(this.cacheDir, `${createHash('sha256').update(podId).digest('hex')}.json`));
  }

  private cacheFileAt(path: string): StateFile<CachedPod> {
    return new StateFile(path, CNI_RESULT_FILE);
  }

  private async run(
    command: CniCommand,
    list: CniNetworkConfigList,
    podId: string,
    netns: string,
    args: string,
    mappings: readonly HostPortMapping[],
    prevResult: CniResult | undefined,
  ): Promise<CniResult | undefined> {
    const plugins = command === 'DEL' ? [...list.plugins].reverse() : list.plugins;
    let result = prevResult;
    for (const plugin of plugins) {
      const config: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
      if (plugin.capabilities?.portMappings && mappings.length > 0) {
        config.runtimeConfig = {
          portMappings: mappings.map((m) => ({
            hostPort: m.hostPort,
            containerPort: m.containerPort,
            protocol: m.protocol.toLowerCase(),
            ...(m.hostIp ? { hostIP: m.hostIp } : {}),
          })),
        };
      }
      if (result !== undefined) config.prevResult = result;
      const out = await invokePlugin(plugin.type, config, { command, containerId: podId, netns, ifName: this.ifName, args, binDirs: this.binDirs });
      // ADD chains results; DEL hands every plugin the cached final result.
      if (command === 'ADD' && out !== undefined) result = out as CniResult;
    }
    return result;
  }

  async setup(podId: string, netnsPath: string, opts: PodSetupOptions = {}): Promise<PodNetworkStatus> {
    if (!CONTAINER_ID_RE.test(podId)) throw new InvalidArgumentError(`pod id "${podId.slice(0, 80)}" is not a valid CNI container id`);
    const mappings = normalizeMappings(opts.portMappings ?? []);
    const args = cniArgs([
      ['IgnoreUnknown', '1'],
      ...(opts.podNamespace ? [['K8S_POD_NAMESPACE', opts.podNamespace] as const] : []),
      ...(opts.podName ? [['K8S_POD_NAME', opts.podName] as const] : []),
      ['K8S_POD_INFRA_CONTAINER_ID', podId],
    ]);
    return this.queue.run(async () => {
      const list = await loadCniConfig(this.confDir);
      let result: CniResult | undefined;
      try {
        result = await this.run('ADD', list, podId, netnsPath, args, mappings, undefined);
        if (result === undefined || addressesOf(result).length === 0)
          throw new InvalidArgumentError(`CNI network ${list.name} (${list.source}) gave pod ${podId} no IP address`);
        const cached: CachedPod = { podId, netns: netnsPath, network: list.name, ifName: this.ifName, args, portMappings: mappings, result, config: list };
        await this.cacheFile(podId).write(cached);
      } catch (err) {
        // The spec: after a failed ADD the runtime runs DEL for the whole list.
        await this.run('DEL', list, podId, netnsPath, args, mappings, result).catch((e: unknown) =>
          log.warn({ pod: podId, err: e }, 'cni: DEL after a failed ADD failed'),
        );
        throw err;
      }
      log.info({ pod: podId, network: list.name, hostname: opts.hostname }, 'pod network set up by CNI');
      return this.statusOf({ podId, network: list.name, ifName: this.ifName, args, portMappings: mappings, result });
    });
  }

  teardown(podId: string, netnsPath?: string): Promise<void> {
    return this.queue.run(async () => {
      const file = this.cacheFile(podId);
      const cached = await file.read();
      const list = cached?.config ?? (await loadCniConfig(this.confDir));
      // A namespace that is gone is passed as "": plugins then clean what they can without it
      // (the bridge plugin, for one, then cannot find its ipMasq rules: unpin after teardown).
      let netns = netnsPath ?? cached?.netns ?? '';
      if (netns !== '') await access(netns).catch(() => (netns = ''));
      await this.run('DEL', list, podId, netns, cached?.args ?? 'IgnoreUnknown=1', cached?.portMappings ?? [], cached?.result);
      await file.remove();
    });
  }

  async status(podId: string): Promise<PodNetworkStatus | undefined> {
    const cached = await this.cacheFile(podId).read();
    return cached ? this.statusOf(cached) : undefined;
  }

  /** Run DEL for cached pods that no longer exist. */
  async reconcile(livePodIds: Iterable<string>): Promise<string[]> {
    const live = new Set(livePodIds);
    // reconcile runs at start-up, before any setup writes a cache file.
    await sweepInterruptedWrites(this.cacheDir);
    let files: string[];
    try {
      files = await readdir(this.cacheDir);
    } catch {
      return [];
    }
    const gone: string[] = [];
    for (const f of files.filter((n) => n.endsWith('.json'))) {
      const cached = await this.cacheFileAt(join(this.cacheDir, f)).read();
      if (!cached || live.has(cached.podId)) continue;
      // One pod's DEL failing (a plugin gone, no config) must not keep the daemon from starting;
      // its cache entry stays, so the next start tries again.
      try {
        await this.teardown(cached.podId);
        gone.push(cached.podId);
      } catch (err) {
        log.warn({ pod: cached.podId, err }, 'cni: DEL for a pod that no longer exists failed');
      }
    }
    return gone;
  }

  private statusOf(cached: CachedPod): PodNetworkStatus {
    const addrs = addressesOf(cached.result);
    const v4 = addrs.find((a) => isIpv4(a.ip));
    const v6 = addrs.find((a) => !isIpv4(a.ip));
    const primary = v4 ?? v6!;
    return {
      ip: primary.ip,
      prefixLength: primary.prefixLength,
      gateway: primary.gateway,
      ...(v4 && v6 ? { ip6: v6.ip, prefixLength6: v6.prefixLength, gateway6: v6.gateway } : {}),
      interface: cached.ifName,
      portMappings: cached.portMappings,
    };
  }
}
