// The node's pod network as the runtime reports and changes it: which backend serves pods
// (the built-in bridge or CNI), whether it is ready (the CRI Status's NetworkReady), and moving
// the built-in network to the pod CIDR kubelet sends in UpdateRuntimeConfig.
import type { CribConfig } from '../config/config.js';
import { log } from '../log.js';
import { loadCniConfig } from './cni-config.js';
import { CniNetwork } from './cni-network.js';
import { PodNetwork } from './pod-network.js';
import type { PodNetworking } from './pod-networking.js';

export interface NetworkReadiness {
  ready: boolean;
  reason?: string;
  message?: string;
}

export class NodeNetwork {
  private constructor(
    private readonly config: CribConfig,
    private current: PodNetworking,
    /** Why the built-in network's host side could not be set up; NetworkReady says so. */
    private setupError: string | undefined,
  ) {}

  /** Open the configured backend. A failure leaves host-network pods working and Status says why. */
  static async open(config: CribConfig): Promise<NodeNetwork> {
    if (config.network.plugin === 'cni') {
      const cni = new CniNetwork({ root: config.root, confDir: config.network.cni_conf_dir, binDirs: config.network.cni_bin_dirs });
      // Readiness re-reads the config dir on every Status, so nothing is remembered here.
      await loadCniConfig(config.network.cni_conf_dir).catch((err: unknown) => {
        log.warn({ err: (err as Error).message, dir: config.network.cni_conf_dir }, 'no usable CNI config yet');
      });
      return new NodeNetwork(config, cni, undefined);
    }
    const builtin = PodNetwork.fromConfig(config);
    const setupError = await builtin.ensureHost().then(
      () => undefined,
      (err: unknown) => {
        log.error({ err }, 'pod network setup failed');
        return (err as Error).message;
      },
    );
    return new NodeNetwork(config, builtin, setupError);
  }

  /** The backend pods are set up with now. */
  get backend(): PodNetworking {
    return this.current;
  }

  async readiness(): Promise<NetworkReadiness> {
    // A CNI config is usually installed after the runtime started (by a DaemonSet), and can go
    // away: readiness follows the config dir, as it is read on every RunPodSandbox.
    if (this.config.network.plugin === 'cni') {
      const dir = this.config.network.cni_conf_dir;
      return loadCniConfig(dir).then(
        (): NetworkReadiness => ({ ready: true }),
        (err: unknown): NetworkReadiness => ({ ready: false, reason: 'NetworkSetupFailed', message: `no usable CNI config in ${dir}: ${(err as Error).message}` }),
      );
    }
    return this.setupError === undefined ? { ready: true } : { ready: false, reason: 'NetworkSetupFailed', message: this.setupError };
  }

  /**
   * kubelet sends the node's pod CIDR at start-up. An empty CIDR, the current one, or a CNI
   * backend (whose plugins own addressing) leave things as they are; otherwise the built-in
   * network moves to the new range. `install` hands the new backend to the pod code, which
   * refuses while any pod holds an address; the old bridge and table go only after that.
   */
  async updatePodCidr(cidr: string, install: (next: PodNetworking) => void): Promise<void> {
    const current = this.current;
    if (!cidr || !(current instanceof PodNetwork) || current.podCidr === cidr) return;
    const next = PodNetwork.fromConfig({ ...this.config, network: { ...this.config.network, pod_cidr: cidr } });
    // The stopped pods' releases still writing the state files end before another instance
    // reads them.
    await current.settle();
    install(next);
    await current.cleanupAll();
    this.current = next;
    this.setupError = undefined;
    await next.ensureHost().catch((err: unknown) => {
      this.setupError = (err as Error).message;
    });
    log.info({ podCidr: cidr }, 'pod CIDR updated');
  }
}
