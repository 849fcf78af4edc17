// One soak worker: a kubelet-like client that owns its own pods (labelled soak-worker=N), looks at
// what the daemon reports for them, and makes one random call that is valid for that report. It
// owns its pods alone, so a call that fails while no kill happened is a crib failure, not a race
// between workers. A call a daemon kill interrupted is kept, and retried the way kubelet would
// once the daemon is back (retryInterrupted).
import { join } from 'node:path';
import type { CriClient } from '../cri-client.js';
import { describeError, type SoakNode } from './node.js';

type ContainerKind = 'long' | 'short' | 'fails';

interface PodView {
  id: string;
  uid: string;
  ready: boolean;
}

interface ContainerView {
  id: string;
  podId: string;
  name: string;
  state: string;
  kind: ContainerKind;
}

interface View {
  pods: PodView[];
  containers: ContainerView[];
}

/** A call, and how kubelet would finish it after a daemon restart interrupted it. */
interface Op {
  name: string;
  /** The pod or container it acts on (to excuse a failure a monitor kill caused). */
  target?: string;
  run(cri: CriClient): Promise<void>;
  /** Given the report after the restart, completes the interrupted call; throws if it cannot. */
  retry(cri: CriClient, view: View): Promise<void>;
}

export interface OpCounts {
  ok: number;
  failed: number;
  interrupted: number;
  excused: number;
}

const MAX_PODS = 4;
const MAX_CONTAINERS_PER_POD = 3;
/** hostPorts the soak's pods take (one daemon, so unique within it). */
const HOST_PORT_BASE = 41_000;
const CALL_DEADLINE_MS = 60_000;

const opts = () => ({ deadline: Date.now() + CALL_DEADLINE_MS });

export class SoakWorker {
  readonly counts = new Map<string, OpCounts>();
  readonly failures: string[] = [];
  private interrupted: Op[] = [];
  private seq = 0;
  private readonly podConfigs = new Map<string, Record<string, unknown>>();
  private readonly label: Record<string, string>;

  constructor(
    private readonly n: number,
    private readonly node: SoakNode,
    private readonly random: () => number,
    private readonly logDir: string,
  ) {
    this.label = { 'soak-worker': String(n) };
  }

  /** One call (after the look at the report it is chosen from). */
  async step(): Promise<void> {
    await this.node.gate.enter();
    const epoch = this.node.epoch;
    const cri = this.node.d.cri;
    const t0 = performance.now();
    let op: Op | undefined;
    try {
      const view = await this.view(cri);
      op = this.choose(view);
      await op.run(cri);
      this.count(op.name, 'ok');
    } catch (err) {
      const name = op?.name ?? 'list';
      if (this.node.epoch !== epoch) {
        this.count(name, 'interrupted');
        if (op) this.interrupted.push(op);
      } else if (op?.target && this.monitorKilledSince(op.target, t0 - 5000)) {
        // Its monitor was killed just before or during the call: the container died under it.
        this.count(name, 'excused');
      } else {
        this.count(name, 'failed');
        this.failures.push(`worker ${this.n} ${name}${op?.target ? ` ${op.target.slice(0, 12)}` : ''}: ${describeError(err)}`);
      }
    } finally {
      this.node.gate.leave();
    }
  }

  /** The calls a daemon kill interrupted and not yet retried, as "Name target". */
  pendingRetries(): string[] {
    return this.interrupted.map((op) => `${op.name}${op.target ? ` ${op.target.slice(0, 12)}` : ''}`);
  }

  /** Finishes the calls a daemon kill interrupted, as kubelet would retry them. Call while the
   * gate is shut. Returns what could not be finished. */
  async retryInterrupted(): Promise<string[]> {
    const ops = this.interrupted.splice(0);
    const wrong: string[] = [];
    for (const op of ops) {
      try {
        const cri = this.node.d.cri;
        await op.retry(cri, await this.view(cri));
        this.count(`${op.name} retry`, 'ok');
      } catch (err) {
        this.count(`${op.name} retry`, 'failed');
        wrong.push(`worker ${this.n} retry of interrupted ${op.name}${op.target ? ` ${op.target.slice(0, 12)}` : ''}: ${describeError(err)}`);
      }
    }
    return wrong;
  }

  /** Stops and removes every pod of this worker (the end of the run). */
  async removeAll(): Promise<void> {
    const cri = this.node.d.cri;
    for (const p of (await this.view(cri)).pods) {
      await cri.runtime.StopPodSandbox({ podSandboxId: p.id }, opts());
      await cri.runtime.RemovePodSandbox({ podSandboxId: p.id }, opts());
    }
  }

  private count(name: string, outcome: keyof OpCounts): void {
    const c = this.counts.get(name) ?? { ok: 0, failed: 0, interrupted: 0, excused: 0 };
    c[outcome]++;
    this.counts.set(name, c);
  }

  private monitorKilledSince(target: string, since: number): boolean {
    for (const [id, at] of this.node.monitorKills) if (at >= since && (id === target || this.podOf.get(id) === target)) return true;
    return false;
  }

  /** Container id → pod id, for excusing pod calls whose container's monitor was killed. */
  private readonly podOf = new Map<string, string>();

  private async view(cri: CriClient): Promise<View> {
    const pods = (await cri.runtime.ListPodSandbox({ filter: { labelSelector: this.label } }, opts())).items as
      { id: string; state: string; metadata: { uid: string } }[];
    const containers = (await cri.runtime.ListContainers({ filter: { labelSelector: this.label } }, opts())).containers as
      { id: string; podSandboxId: string; state: string; metadata: { name: string }; labels: Record<string, string> }[];
    for (const p of pods) this.node.known.pods.add(p.id);
    for (const c of containers) {
      this.node.known.containers.add(c.id);
      this.podOf.set(c.id, c.podSandboxId);
    }
    return {
      pods: pods.map((p) => ({ id: p.id, uid: p.metadata.uid, ready: p.state === 'SANDBOX_READY' })),
      containers: containers.map((c) => ({
        id: c.id, podId: c.podSandboxId, name: c.metadata.name, state: c.state, kind: (c.labels['soak-kind'] ?? 'long') as ContainerKind,
      })),
    };
  }

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.random() * xs.length)]!;
  }

  /** A random call that is valid for what the daemon reports, weighted roughly like a busy node. */
  private choose(view: View): Op {
    const candidates: [number, () => Op][] = [];
    const ready = view.pods.filter((p) => p.ready);
    const inPod = (p: PodView) => view.containers.filter((c) => c.podId === p.id);
    const byState = (s: string) => view.containers.filter((c) => c.state === s);
    if (view.pods.length < MAX_PODS) candidates.push([3, () => this.runPod()]);
    if (ready.length) candidates.push([1, () => this.stopPod(this.pick(ready).id)]);
    if (view.pods.length) candidates.push([1, () => this.removePod(this.pick(view.pods).id)]);
    const roomy = ready.filter((p) => inPod(p).length < MAX_CONTAINERS_PER_POD);
    if (roomy.length) candidates.push([4, () => this.createContainer(this.pick(roomy), this.pick<ContainerKind>(['long', 'long', 'short', 'fails']))]);
    if (byState('CONTAINER_CREATED').length) candidates.push([4, () => this.startContainer(this.pick(byState('CONTAINER_CREATED')).id)]);
    const running = byState('CONTAINER_RUNNING');
    if (running.length) candidates.push([1, () => this.stopContainer(this.pick(running).id)]);
    const removable = view.containers.filter((c) => c.state === 'CONTAINER_EXITED' || c.state === 'CONTAINER_CREATED');
    if (removable.length) candidates.push([2, () => this.removeContainer(this.pick(removable).id)]);
    const execable = running.filter((c) => c.kind === 'long');
    if (execable.length) candidates.push([4, () => this.exec(this.pick(execable).id)]);
    // One worker pulls and removes the spare image, so image calls never race each other.
    if (this.n === 0) candidates.push([1, () => this.pull()], [1, () => this.removeImage()]);
    let r = this.random() * candidates.reduce((s, [w]) => s + w, 0);
    for (const [w, make] of candidates) {
      r -= w;
      if (r < 0) return make();
    }
    return candidates.at(-1)![1]();
  }

  private runPod(): Op {
    const i = this.seq++;
    const uid = `soak-${process.pid}-${this.n}-${i}`;
    const sharedPid = this.random() < 0.25;
    const config = {
      metadata: { name: `w${this.n}-p${i}`, namespace: 'soak', uid, attempt: 0 },
      hostname: `w${this.n}-p${i}`,
      logDirectory: join(this.logDir, uid),
      labels: this.label,
      linux: sharedPid ? { securityContext: { namespaceOptions: { pid: 'POD' } } } : {},
      portMappings: this.random() < 0.25 ? [{ protocol: 'TCP', containerPort: 80, hostPort: HOST_PORT_BASE + ((this.n * 1000 + i) % 5000) }] : [],
    };
    this.podConfigs.set(uid, config);
    const run = async (cri: CriClient) => {
      const { podSandboxId } = await cri.runtime.RunPodSandbox({ config }, opts());
      this.node.known.pods.add(podSandboxId);
    };
    return {
      name: 'RunPodSandbox', run,
      // Interrupted: kubelet finds the pod (then it has it) or runs it again under the same name.
      retry: async (cri, view) => {
        if (!view.pods.some((p) => p.uid === uid)) await run(cri);
      },
    };
  }

  private stopPod(podSandboxId: string): Op {
    const run = async (cri: CriClient) => void (await cri.runtime.StopPodSandbox({ podSandboxId }, opts()));
    return { name: 'StopPodSandbox', target: podSandboxId, run, retry: async (cri, view) => {
      if (view.pods.some((p) => p.id === podSandboxId)) await run(cri);
    } };
  }

  private removePod(podSandboxId: string): Op {
    // Removing a pod that is gone succeeds (CRI): the retry needs no look first.
    const run = async (cri: CriClient) => void (await cri.runtime.RemovePodSandbox({ podSandboxId }, opts()));
    return { name: 'RemovePodSandbox', target: podSandboxId, run, retry: run };
  }

  private createContainer(pod: PodView, kind: ContainerKind): Op {
    const name = `c${this.seq++}`;
    const sandboxConfig = this.podConfigs.get(pod.uid);
    const shared = (sandboxConfig?.linux as { securityContext?: unknown } | undefined)?.securityContext !== undefined;
    const command = {
      long: ['sleep', '100000'],
      short: ['sh', '-c', 'echo started; sleep 2; echo done'],
      fails: ['sh', '-c', 'echo failing >&2; exit 3'],
    }[kind];
    const config = {
      metadata: { name, attempt: 0 }, image: { image: this.node.image }, command, logPath: `${name}/0.log`,
      labels: { ...this.label, 'soak-kind': kind },
      linux: shared ? { securityContext: { namespaceOptions: { pid: 'POD' } } } : {},
    };
    const run = async (cri: CriClient) => {
      const { containerId } = await cri.runtime.CreateContainer({ podSandboxId: pod.id, config, sandboxConfig }, opts());
      this.node.known.containers.add(containerId);
    };
    return {
      name: 'CreateContainer', target: pod.id, run,
      // Interrupted: kubelet finds the container (then it has it) or creates it again, while its
      // pod is still ready.
      retry: async (cri, view) => {
        if (view.containers.some((c) => c.podId === pod.id && c.name === name)) return;
        if (view.pods.some((p) => p.id === pod.id && p.ready)) await run(cri);
      },
    };
  }

  private startContainer(containerId: string): Op {
    const run = async (cri: CriClient) => void (await cri.runtime.StartContainer({ containerId }, opts()));
    return { name: 'StartContainer', target: containerId, run, retry: async (cri, view) => {
      if (view.containers.some((c) => c.id === containerId && c.state === 'CONTAINER_CREATED')) await run(cri);
    } };
  }

  private stopContainer(containerId: string): Op {
    // `sleep` as PID 1 ignores SIGTERM: a short timeout, then SIGKILL.
    const timeout = String(Math.floor(this.random() * 2));
    const run = async (cri: CriClient) => void (await cri.runtime.StopContainer({ containerId, timeout }, opts()));
    return { name: 'StopContainer', target: containerId, run, retry: async (cri, view) => {
      if (view.containers.some((c) => c.id === containerId)) await run(cri);
    } };
  }

  private removeContainer(containerId: string): Op {
    const run = async (cri: CriClient) => void (await cri.runtime.RemoveContainer({ containerId }, opts()));
    return { name: 'RemoveContainer', target: containerId, run, retry: run };
  }

  private exec(containerId: string): Op {
    const run = async (cri: CriClient) => {
      const r = await cri.runtime.ExecSync({ containerId, cmd: ['sh', '-c', 'echo ok; exit 7'], timeout: '30' }, opts());
      if (r.exitCode !== 7 || r.stdout.toString() !== 'ok\n') {
        throw new Error(`ExecSync answered exit ${r.exitCode}, stdout ${JSON.stringify(r.stdout.toString())}, stderr ${JSON.stringify(r.stderr.toString())}`);
      }
    };
    return { name: 'ExecSync', target: containerId, run, retry: async (cri, view) => {
      if (view.containers.some((c) => c.id === containerId && c.state === 'CONTAINER_RUNNING')) await run(cri);
    } };
  }

  private pull(): Op {
    const run = async (cri: CriClient) => void (await cri.image.PullImage({ image: { image: this.node.spareImage } }, opts()));
    return { name: 'PullImage', run, retry: run };
  }

  private removeImage(): Op {
    // Removing an image that is not there succeeds (CRI).
    const run = async (cri: CriClient) => void (await cri.image.RemoveImage({ image: { image: this.node.spareImage } }, opts()));
    return { name: 'RemoveImage', run, retry: run };
  }
}
