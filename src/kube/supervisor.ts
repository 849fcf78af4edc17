// The supervisor of one played pod: a detached `crib kube supervise` process that does what
// kubelet's pod workers do for the pod, for as long as it is played. It runs the sandbox, the init
// containers one after another to completion, then the app containers; restarts containers as
// restartPolicy says with kubelet's back-off; runs the probes and kills containers whose liveness
// or startup probe fails; and records all of it in the state file. It survives the daemon's
// restart: every CRI call that finds no daemon is retried on the next pass, on a channel that
// reconnects, and the containers (whose monitors outlive the daemon) keep their ids.
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { V1Container } from '@kubernetes/client-node/dist/gen/models/V1Container.js';
import type { V1Pod } from '@kubernetes/client-node/dist/gen/models/V1Pod.js';
import type { V1Probe } from '@kubernetes/client-node/dist/gen/models/V1Probe.js';
import type { CriClient } from '../client/cri-client.js';
import { afterRestart, restartAt, type BackoffPolicy } from './backoff.js';
import { sourcesFromJson } from './config-sources.js';
import { containerConfig, DEFAULT_TERMINATION_GRACE_SECONDS, runAsNonRootRequested, runAsNonRootViolation, type ContainerContext, type ImageUser } from './container-config.js';
import type { DataSources, PodFacts } from './env.js';
import { POD_UID } from './labels.js';
import { probeTiming, runProbe } from './probes.js';
import { memTotalBytes, qosClass, type QosClass } from './resources.js';
import { podHostname, sandboxConfig } from './sandbox-config.js';
import { KubeStateStore, type PlayedContainer, type PlayedPod } from './state-store.js';

const TICK_MS = 500;

type ProbeKind = 'startupProbe' | 'livenessProbe' | 'readinessProbe';

interface ProbeState {
  lastRunAt: number;
  running: boolean;
  successes: number;
  failures: number;
}

const isUnavailable = (err: unknown) => (err as { code?: number }).code === grpcStatus.UNAVAILABLE || (err as { code?: number }).code === grpcStatus.DEADLINE_EXCEEDED;
const isNotFound = (err: unknown) => (err as { code?: number }).code === grpcStatus.NOT_FOUND;
const errText = (err: unknown) => (err as { details?: string }).details || (err as Error).message || String(err);

export function etcHostsContent(podIp: string, host: string): string {
  return '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n' +
    `fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n${podIp ? `${podIp}\t${host}\n` : ''}`;
}

export class PodSupervisor {
  private rec!: PlayedPod;
  private pod!: V1Pod;
  private sources!: DataSources;
  private qos!: QosClass;
  private memoryCapacity = 0;
  private lastSaved = '';
  private stopping = false;
  private readonly probes = new Map<string, ProbeState>();
  private readonly killing = new Set<string>();
  private sandboxRetryAt = 0;

  constructor(private readonly store: KubeStateStore, private readonly key: string, private readonly cri: CriClient) {}

  async load(): Promise<void> {
    const rec = await this.store.read(this.key);
    if (!rec) throw new Error(`no played pod ${this.key} in ${this.store.dir}`);
    this.rec = rec;
    const { ObjectSerializer } = await import('@kubernetes/client-node/dist/gen/models/ObjectSerializer.js');
    this.pod = ObjectSerializer.deserialize(rec.pod, 'V1Pod', '') as V1Pod;
    this.sources = sourcesFromJson(rec.sources);
    this.qos = qosClass([...(this.pod.spec!.initContainers ?? []), ...this.pod.spec!.containers] as never);
    this.memoryCapacity = memTotalBytes(await readFile('/proc/meminfo', 'utf8'));
    this.lastSaved = JSON.stringify(rec);
  }

  stop(): void {
    this.stopping = true;
  }

  async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.step();
        if (this.rec.message?.startsWith('the crib daemon is unreachable')) this.rec.message = undefined;
      } catch (err) {
        this.rec.message = isUnavailable(err) ? `the crib daemon is unreachable (${errText(err)}); retrying` : errText(err);
      }
      await this.save();
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
  }

  private async save(): Promise<void> {
    const text = JSON.stringify(this.rec);
    if (text === this.lastSaved || this.stopping) return;
    await this.store.write(this.rec);
    this.lastSaved = text;
  }

  private get policy(): BackoffPolicy {
    return { baseMs: this.rec.options.backoffBaseMs, maxMs: this.rec.options.backoffMaxMs };
  }

  private get restartPolicy(): string {
    return this.pod.spec!.restartPolicy ?? 'Always';
  }

  private facts(): PodFacts {
    return { name: this.rec.name, namespace: this.rec.namespace, uid: this.rec.uid, podIp: this.rec.podIp ?? '', nodeName: hostname() };
  }

  private sandboxConfig(): Record<string, unknown> {
    return sandboxConfig(this.pod, this.rec, { logRoot: this.rec.options.logRoot, hostResolvConf: this.rec.options.resolvConf });
  }

  private get call() {
    return { deadline: Date.now() + 120_000 };
  }

  private async step(): Promise<void> {
    if (!this.rec.sandboxId) {
      if (Date.now() < this.sandboxRetryAt) return;
      await this.runSandbox();
      if (!this.rec.sandboxId) return;
    }
    await this.refreshStatuses();
    const inits = this.rec.containers.filter((c) => c.init);
    const apps = this.rec.containers.filter((c) => !c.init);
    for (const c of inits) {
      if (c.phase === 'terminated' && c.exitCode === 0) continue;
      await this.driveInit(c);
      this.updatePhase(apps);
      return;
    }
    for (const c of apps) await this.driveApp(c);
    this.updatePhase(apps);
  }

  private async runSandbox(): Promise<void> {
    const logDir = sandboxConfig(this.pod, this.rec, { logRoot: this.rec.options.logRoot, hostResolvConf: '' }).logDirectory as string;
    try {
      await mkdir(logDir, { recursive: true, mode: 0o755 });
      const { podSandboxId } = await this.cri.runtime.RunPodSandbox({ config: this.sandboxConfig(), runtimeHandler: '' }, this.call);
      this.rec.sandboxId = podSandboxId as string;
      await this.store.write(this.rec);
      const { status } = await this.cri.runtime.PodSandboxStatus({ podSandboxId }, this.call);
      this.rec.podIp = status?.network?.ip ?? '';
      this.rec.message = undefined;
      if (!this.pod.spec!.hostNetwork) {
        await writeFile(join(this.store.podDir(this.key), 'etc-hosts'), etcHostsContent(this.rec.podIp ?? '', podHostname(this.pod)), { mode: 0o644 });
      }
    } catch (err) {
      if (isUnavailable(err)) throw err;
      this.rec.message = `RunPodSandbox failed: ${errText(err)}`;
      this.sandboxRetryAt = Date.now() + this.policy.baseMs;
    }
  }

  /** Move running containers that exited (or vanished) to terminated. */
  private async refreshStatuses(): Promise<void> {
    for (const c of this.rec.containers) {
      if (!c.id || c.phase !== 'running') continue;
      try {
        const { status } = await this.cri.runtime.ContainerStatus({ containerId: c.id }, this.call);
        // Without a readiness probe a container is ready once it is seen running after its
        // start (as kubelet sees it through its status pass, not the start call's return).
        if (status.state === 'CONTAINER_RUNNING' && c.started && !this.spec(c).readinessProbe && !c.init && !this.killing.has(c.id)) c.ready = true;
        if (status.state === 'CONTAINER_EXITED') {
          c.phase = 'terminated';
          c.exitCode = status.exitCode;
          c.finishedAt = Number(BigInt(status.finishedAt || '0') / 1_000_000n) || Date.now();
          c.reason = this.killing.has(c.id) ? c.reason : status.exitCode === 0 ? 'Completed' : 'Error';
          c.ready = false;
          this.killing.delete(c.id);
        }
      } catch (err) {
        if (!isNotFound(err)) throw err;
        c.phase = 'terminated';
        c.exitCode = -1;
        c.finishedAt = Date.now();
        c.reason = 'ContainerGone';
        c.message = `container ${c.id.slice(0, 13)} is gone from the runtime`;
        c.ready = false;
      }
    }
  }

  private spec(c: PlayedContainer): V1Container {
    const list = c.init ? this.pod.spec!.initContainers! : this.pod.spec!.containers;
    return list.find((s) => s.name === c.name)!;
  }

  private async driveInit(c: PlayedContainer): Promise<void> {
    if (!c.id) return this.startContainer(c);
    if (c.phase !== 'terminated') return;
    // A failed init container: the pod fails with restartPolicy Never, else it is retried.
    if (this.restartPolicy === 'Never') {
      this.rec.phase = 'Failed';
      this.rec.message = `init container ${c.name} failed with exit code ${c.exitCode}`;
      return;
    }
    await this.restartWithBackoff(c);
  }

  private shouldRestart(c: PlayedContainer): boolean {
    if (this.restartPolicy === 'Always') return true;
    if (this.restartPolicy === 'OnFailure') return c.exitCode !== 0;
    return false;
  }

  private async driveApp(c: PlayedContainer): Promise<void> {
    if (!c.id) return this.startContainer(c);
    if (c.phase === 'running') return this.probe(c);
    if (c.phase === 'terminated' && this.shouldRestart(c)) await this.restartWithBackoff(c);
  }

  private async restartWithBackoff(c: PlayedContainer): Promise<void> {
    const now = Date.now();
    const at = restartAt(c.backoff, c.finishedAt ?? now, this.policy);
    if (now < at) {
      c.reason = 'CrashLoopBackOff';
      c.message = `back-off ${Math.round((c.backoff?.delayMs ?? 0) / 1000)}s restarting failed container ${c.name}`;
      return;
    }
    c.backoff = afterRestart(c.backoff, c.finishedAt ?? now, now, this.policy);
    // kubelet keeps the last dead container (for `logs --previous`) and removes older ones.
    if (c.previousId) {
      await this.cri.runtime.RemoveContainer({ containerId: c.previousId }, this.call).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
    c.previousId = c.id;
    c.id = undefined;
    c.restartCount++;
    c.restarts = [...c.restarts, { exitedAt: c.finishedAt ?? now, at: now }].slice(-32);
    await this.startContainer(c);
  }

  private async ensureImage(image: string, policy: string): Promise<void> {
    if (policy !== 'Always') {
      const { image: present } = await this.cri.image.ImageStatus({ image: { image } }, this.call);
      if (present) return;
      if (policy === 'Never') throw Object.assign(new Error(`image ${image} is not present and imagePullPolicy is Never`), { reason: 'ErrImageNeverPull' });
    }
    try {
      await this.cri.image.PullImage({ image: { image }, sandboxConfig: this.sandboxConfig() }, { deadline: Date.now() + 600_000 });
    } catch (err) {
      if (isUnavailable(err)) throw err;
      throw Object.assign(new Error(`pulling ${image}: ${errText(err)}`), { reason: 'ErrImagePull' });
    }
  }

  private async startContainer(c: PlayedContainer): Promise<void> {
    const spec = this.spec(c);
    const image = spec.image!;
    const tag = image.includes('@') ? '' : (/:([^/:]+)$/.exec(image)?.[1] ?? 'latest');
    const pullPolicy = spec.imagePullPolicy ?? (tag === 'latest' ? 'Always' : 'IfNotPresent');
    c.phase = 'waiting';
    c.reason = 'ContainerCreating';
    c.message = undefined;
    c.started = !spec.startupProbe;
    c.ready = false;
    try {
      if (!c.backoff || c.restartCount === 0) await this.ensureImage(image, pullPolicy);
      else await this.ensureImage(image, pullPolicy === 'Always' ? 'Always' : 'IfNotPresent');
      // The image's user matters only to runAsNonRoot: no extra ImageStatus call without it.
      if (runAsNonRootRequested(spec, this.pod)) {
        const { image: imageUser } = await this.cri.image.ImageStatus({ image: { image } }, this.call);
        const violation = runAsNonRootViolation(spec, this.pod, (imageUser ?? {}) as ImageUser);
        if (violation) throw Object.assign(new Error(violation), { reason: 'CreateContainerConfigError' });
      }
      const dir = join(this.store.podDir(this.key), 'containers', c.name);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      const terminationLogFile = join(dir, String(c.restartCount));
      await writeFile(terminationLogFile, '', { mode: 0o666 });
      const logDir = this.sandboxConfig().logDirectory as string;
      await mkdir(join(logDir, c.name), { recursive: true, mode: 0o755 });
      const ctx: ContainerContext = {
        pod: this.pod, facts: this.facts(), sources: this.sources, qos: this.qos, memoryCapacity: this.memoryCapacity,
        volumes: this.rec.volumes, terminationLogFile,
        etcHosts: this.pod.spec!.hostNetwork ? undefined : join(this.store.podDir(this.key), 'etc-hosts'),
      };
      const config = containerConfig(spec, c.restartCount, ctx, image);
      const { containerId } = await this.cri.runtime.CreateContainer({ podSandboxId: this.rec.sandboxId, config, sandboxConfig: this.sandboxConfig() }, this.call);
      c.id = containerId as string;
      await this.store.write(this.rec);
      await this.cri.runtime.StartContainer({ containerId }, this.call);
      c.phase = 'running';
      c.reason = undefined;
      c.startedAt = Date.now();
      c.exitCode = undefined;
      c.finishedAt = undefined;
      for (const k of ['startupProbe', 'livenessProbe', 'readinessProbe']) this.probes.delete(`${c.name}/${k}`);
    } catch (err) {
      if (isUnavailable(err)) throw err;
      // Counted like a crash: the next try waits out the back-off, as kubelet's does.
      c.phase = 'terminated';
      c.reason = (err as { reason?: string }).reason ?? 'CreateContainerError';
      c.message = errText(err);
      c.exitCode = c.exitCode ?? -1;
      c.finishedAt = Date.now();
      c.backoff = c.backoff ?? { delayMs: this.policy.baseMs, updatedAt: Date.now() };
    }
  }

  private probe(c: PlayedContainer): void {
    const spec = this.spec(c);
    const kinds: ProbeKind[] = c.started ? ['livenessProbe', 'readinessProbe'] : ['startupProbe'];
    for (const kind of kinds) {
      const p = spec[kind];
      if (!p) continue;
      const key = `${c.name}/${kind}`;
      const st = this.probes.get(key) ?? { lastRunAt: 0, running: false, successes: 0, failures: 0 };
      this.probes.set(key, st);
      const t = probeTiming(p);
      const now = Date.now();
      if (st.running || now < (c.startedAt ?? now) + t.initialDelayMs || now < st.lastRunAt + t.periodMs) continue;
      st.running = true;
      st.lastRunAt = now;
      const id = c.id!;
      void runProbe(p, { cri: this.cri, containerId: id, podIp: this.rec.podIp || '127.0.0.1', ports: (spec.ports ?? []) as never })
        .then((r) => this.probeResult(c, id, kind, p, st, r.ok, r.message))
        .finally(() => (st.running = false));
    }
  }

  private probeResult(c: PlayedContainer, id: string, kind: ProbeKind, p: V1Probe, st: ProbeState, ok: boolean, message: string): void {
    if (c.id !== id || c.phase !== 'running') return;
    const t = probeTiming(p);
    if (ok) {
      st.successes++;
      st.failures = 0;
    } else {
      st.failures++;
      st.successes = 0;
    }
    if (kind === 'readinessProbe') {
      if (ok && st.successes >= t.successThreshold) c.ready = true;
      if (!ok && st.failures >= t.failureThreshold) c.ready = false;
      if (!ok) c.message = `Readiness probe failed: ${message}`;
      return;
    }
    if (kind === 'startupProbe' && ok) {
      c.started = true;
      return;
    }
    if (ok || st.failures < t.failureThreshold) return;
    // A liveness or startup probe failed failureThreshold times: kubelet kills the container
    // with the probe's grace period (else the pod's), and the restart policy decides the rest.
    const what = kind === 'livenessProbe' ? 'Liveness' : 'Startup';
    c.reason = 'Error';
    c.message = `${what} probe failed: ${message}; container will be restarted`;
    c.ready = false;
    this.killing.add(id);
    const grace = p.terminationGracePeriodSeconds ?? this.pod.spec!.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS;
    st.failures = 0;
    void this.cri.runtime.StopContainer({ containerId: id, timeout: grace }, { deadline: Date.now() + (grace + 60) * 1000 }).catch(() => this.killing.delete(id));
  }

  private updatePhase(apps: PlayedContainer[]): void {
    if (this.rec.phase === 'Failed' && apps.every((c) => !c.id)) return;
    const done = apps.every((c) => c.phase === 'terminated' && !this.shouldRestart(c));
    if (done && apps.every((c) => c.id)) {
      this.rec.phase = apps.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
      return;
    }
    this.rec.phase = apps.some((c) => c.phase === 'running') ? 'Running' : 'Pending';
  }

  /** Sandboxes of this pod that the runtime knows (by kubelet's uid label). */
  static async sandboxesOf(cri: CriClient, uid: string): Promise<string[]> {
    const { items } = await cri.runtime.ListPodSandbox({ filter: { labelSelector: { [POD_UID]: uid } } }, { deadline: Date.now() + 30_000 });
    return (items as { id: string }[]).map((p) => p.id);
  }
}
