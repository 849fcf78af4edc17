// A pod network (src/network/pod-networking.ts's PodNetworking) without bridges, veths or
// nftables, for unit tests of the sandbox service: addresses come from an in-memory pool, and a
// test can make the next setup or teardown fail the way a CNI ADD/DEL does. It outlives a
// SandboxService, as the node's network state does across a daemon restart.
import type { PodNetworking, PodNetworkStatus, PodSetupOptions } from '../src/network/pod-networking.js';

export class FakePodNetwork implements PodNetworking {
  /** Every call, "verb podId", in order. */
  readonly calls: string[] = [];
  /** Pods holding an address: pod id -> its status and the netns it was set up in. */
  readonly attached = new Map<string, { netnsPath: string; status: PodNetworkStatus }>();
  /** What each pod's setup was asked for. */
  readonly setupOptions = new Map<string, PodSetupOptions>();
  failNextSetup: Error | undefined;
  setupGate: Promise<void> | undefined;
  failNextTeardown: Error | undefined;
  private nextHost = 2;

  async setup(podId: string, netnsPath: string, opts: PodSetupOptions = {}): Promise<PodNetworkStatus> {
    this.calls.push(`setup ${podId}`);
    this.setupOptions.set(podId, opts);
    // A test holds setup here to catch the service mid-create (e.g. to "crash" the daemon there).
    if (this.setupGate) await this.setupGate;
    const err = this.failNextSetup;
    this.failNextSetup = undefined;
    if (err) throw err;
    if (this.attached.has(podId)) throw new Error(`fake network: pod ${podId} already has a network`);
    const status: PodNetworkStatus = {
      ip: `10.88.0.${this.nextHost++}`, prefixLength: 16, gateway: '10.88.0.1', interface: 'eth0', portMappings: [],
    };
    this.attached.set(podId, { netnsPath, status });
    return status;
  }

  async teardown(podId: string): Promise<void> {
    this.calls.push(`teardown ${podId}`);
    const err = this.failNextTeardown;
    this.failNextTeardown = undefined;
    if (err) throw err;
    this.attached.delete(podId);
  }

  async status(podId: string): Promise<PodNetworkStatus | undefined> {
    return this.attached.get(podId)?.status;
  }

  async reconcile(livePodIds: Iterable<string>): Promise<string[]> {
    this.calls.push('reconcile');
    const live = new Set(livePodIds);
    const leaked = [...this.attached.keys()].filter((id) => !live.has(id));
    for (const id of leaked) this.attached.delete(id);
    return leaked;
  }
}
