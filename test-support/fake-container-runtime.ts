// An in-memory implementation of the container-runtime port (src/runtime/container-runtime.ts)
// for unit tests of the services above it: no processes, no root. It plays the node: it outlives
// a ContainerService (a daemon restart is a new service over the same fake), and a test drives
// what the real runtime would report: an exit, a monitor that dies with or without its process.
import type { Socket } from 'node:net';
import type {
  CheckpointOptions, ContainerRuntime, CreateOptions, Created, ExecSession, ExecSyncResult, ExitRecord, OciProcess, RuntimeEvent,
  RuntimeRef, StartState,
} from '../src/runtime/container-runtime.js';
import { NO_FEATURES } from '../src/runtime/runtime-features.js';

export interface FakeContainer {
  ref: RuntimeRef;
  options: CreateOptions;
  state: 'parked' | 'running' | 'exited' | 'deleted';
  exit?: ExitRecord;
  monitorAlive: boolean;
  processAlive: boolean;
  /** Frozen by pause(), until resume(). */
  paused?: boolean;
  /** The daemon said it recorded the exit (ack-exit). */
  exitAcked: boolean;
  watchers: Set<(e: RuntimeEvent) => void>;
}

export class FakeContainerRuntime implements ContainerRuntime {
  readonly features = NO_FEATURES;
  readonly containers = new Map<string, FakeContainer>();
  /** Every call, "verb id [args]", in order. */
  readonly calls: string[] = [];
  /** Signals the fake's processes ignore (the process keeps running). */
  readonly ignoredSignals = new Set<string>();
  /** Runs inside start(), before it resolves (e.g. to make the process exit right away). */
  duringStart: ((id: string) => void) | undefined;
  private nextPid = 1000;

  constructor(readonly handler = 'crib') {}

  private get(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c || c.state === 'deleted') throw new Error(`fake runtime: container ${id} does not exist`);
    return c;
  }

  async create(c: RuntimeRef, o: CreateOptions): Promise<Created> {
    this.calls.push(`create ${c.id}`);
    const created: Created = { pid: this.nextPid++, pidStartTime: '1', monitorPid: this.nextPid++, monitorStartTime: '1' };
    this.containers.set(c.id, {
      ref: { ...c, ...created }, options: o, state: 'parked', monitorAlive: true, processAlive: true, exitAcked: false, watchers: new Set(),
    });
    return created;
  }

  /** Runs inside checkpoint, after its checks (e.g. to have the container write, or to fail). */
  duringCheckpoint: ((id: string, o: CheckpointOptions) => Promise<void>) | undefined;

  /** The fake has no processes to dump: it records the call and checks the container runs. */
  async checkpoint(c: RuntimeRef, o: CheckpointOptions): Promise<void> {
    this.calls.push(`checkpoint ${c.id} ${o.imagePath}`);
    const fc = this.get(c.id);
    if (fc.state !== 'running') throw new Error(`fake runtime: container ${c.id} is ${fc.state}, not running`);
    await this.duringCheckpoint?.(c.id, o);
  }

  /** Makes resume fail (the runtime refused), as often as it is called while set. */
  failResume: string | undefined;

  async pause(c: RuntimeRef): Promise<void> {
    this.calls.push(`pause ${c.id}`);
    const fc = this.get(c.id);
    if (fc.state !== 'running' || !fc.processAlive) throw new Error(`fake runtime: container ${c.id} is not running`);
    fc.paused = true;
  }

  async resume(c: RuntimeRef): Promise<void> {
    this.calls.push(`resume ${c.id}`);
    if (this.failResume) throw new Error(`fake runtime: ${this.failResume}`);
    const fc = this.containers.get(c.id);
    if (fc) fc.paused = false;
  }

  async restore(c: RuntimeRef, o: CreateOptions & { imagePath: string }): Promise<Created> {
    this.calls.push(`restore ${c.id} ${o.imagePath}`);
    const created: Created = { pid: this.nextPid++, pidStartTime: '1', monitorPid: this.nextPid++, monitorStartTime: '1' };
    this.containers.set(c.id, {
      ref: { ...c, ...created }, options: o, state: 'running', monitorAlive: true, processAlive: true, exitAcked: false, watchers: new Set(),
    });
    return created;
  }

  async start(c: RuntimeRef): Promise<void> {
    this.calls.push(`start ${c.id}`);
    const fc = this.get(c.id);
    if (fc.state !== 'parked') throw new Error(`fake runtime: container ${c.id} is ${fc.state}, not parked`);
    fc.state = 'running';
    this.duringStart?.(c.id);
  }

  async startState(c: RuntimeRef): Promise<StartState> {
    const fc = this.containers.get(c.id);
    if (!fc || fc.state === 'deleted') return 'gone';
    return fc.state === 'parked' ? 'parked' : 'started';
  }

  async kill(c: RuntimeRef, signal: string, o: { all?: boolean } = {}): Promise<void> {
    this.calls.push(`kill ${c.id} ${signal}${o.all ? ' all' : ''}`);
    const fc = this.containers.get(c.id);
    if (!fc || !fc.processAlive || this.ignoredSignals.has(signal)) return;
    const sig = signal === 'KILL' ? 9 : signal === 'TERM' ? 15 : 1;
    // The process dies now; its monitor, if alive, tells the watchers a moment later.
    fc.processAlive = false;
    setImmediate(() => {
      if (fc.monitorAlive) this.exit(c.id, 128 + sig, sig);
    });
  }

  /** Runs inside delete, before it resolves (e.g. to hold it until a test lets it go). */
  duringDelete: ((id: string) => Promise<void>) | undefined;

  async delete(c: RuntimeRef): Promise<void> {
    this.calls.push(`delete ${c.id}`);
    await this.duringDelete?.(c.id);
    const fc = this.containers.get(c.id);
    if (!fc) return;
    fc.state = 'deleted';
    fc.processAlive = false;
    fc.watchers.clear();
  }

  /** Makes deleteExited fail (the runtime refused), as often as it is called while set. */
  failDeleteExited: string | undefined;
  /** Runs inside deleteExited, before it resolves (e.g. to hold it until a test lets it go). */
  duringDeleteExited: ((id: string) => Promise<void>) | undefined;

  /** Like the real runtime: the state goes, a delete() after has nothing to remove. */
  async deleteExited(c: RuntimeRef): Promise<void> {
    this.calls.push(`delete-exited ${c.id}`);
    await this.duringDeleteExited?.(c.id);
    if (this.failDeleteExited) throw new Error(`fake runtime: ${this.failDeleteExited}`);
    const fc = this.containers.get(c.id);
    if (!fc) return;
    fc.state = 'deleted';
    fc.processAlive = false;
    fc.watchers.clear();
  }

  async update(c: RuntimeRef, resources: unknown): Promise<void> {
    this.calls.push(`update ${c.id} ${JSON.stringify(resources)}`);
    this.get(c.id);
  }

  async execSync(c: RuntimeRef, proc: OciProcess): Promise<ExecSyncResult> {
    this.calls.push(`exec-sync ${c.id} ${proc.args.join(' ')}`);
    this.get(c.id);
    return { exitCode: 0, stdout: Buffer.from(proc.args.join(' ')), stderr: Buffer.alloc(0), timedOut: false, truncated: false };
  }

  async exec(): Promise<ExecSession> {
    throw new Error('fake runtime: streaming exec is not faked');
  }

  async attach(): Promise<Socket> {
    throw new Error('fake runtime: attach is not faked');
  }

  async resize(c: RuntimeRef, rows: number, cols: number): Promise<void> {
    this.calls.push(`resize ${c.id} ${rows}x${cols}`);
  }

  async reopenLog(c: RuntimeRef): Promise<void> {
    this.calls.push(`reopen ${c.id}`);
  }

  async watch(c: RuntimeRef, onEvent: (e: RuntimeEvent) => void): Promise<() => void> {
    this.calls.push(`watch ${c.id}`);
    const fc = this.get(c.id);
    if (fc.exit) onEvent({ kind: 'exited', exit: fc.exit });
    else if (!fc.monitorAlive) onEvent({ kind: 'monitor-gone', detail: `crib-monitor (pid ${fc.ref.monitorPid}) is gone` });
    else fc.watchers.add(onEvent);
    return () => fc.watchers.delete(onEvent);
  }

  async exitStatus(c: RuntimeRef): Promise<ExitRecord | undefined> {
    return this.get(c.id).exit;
  }

  async exitRecorded(c: RuntimeRef): Promise<void> {
    this.calls.push(`exit-recorded ${c.id}`);
    const fc = this.containers.get(c.id);
    if (fc) fc.exitAcked = true;
  }

  async killOrphan(c: RuntimeRef): Promise<boolean> {
    this.calls.push(`kill-orphan ${c.id}`);
    const fc = this.get(c.id);
    const was = fc.processAlive;
    fc.processAlive = false;
    return was;
  }

  // ---- what a test makes happen -------------------------------------------------------------

  /** The container's process exits and its monitor reports it. */
  exit(id: string, exitCode: number, signal: number | null = null): ExitRecord {
    const fc = this.get(id);
    const exit: ExitRecord = { exitCode, signal, exitedAt: new Date().toISOString(), oomKilled: false };
    fc.exit = exit;
    fc.state = 'exited';
    fc.processAlive = false;
    for (const w of [...fc.watchers]) w({ kind: 'exited', exit });
    fc.watchers.clear();
    return exit;
  }

  /** The monitor dies (kill -9): its process lives on or not. */
  killMonitor(id: string, o: { processAlive: boolean }): void {
    const fc = this.get(id);
    fc.monitorAlive = false;
    fc.processAlive = o.processAlive;
    for (const w of [...fc.watchers]) w({ kind: 'monitor-gone', detail: `crib-monitor (pid ${fc.ref.monitorPid}) is gone (its control socket closed) and left no exit status` });
    fc.watchers.clear();
  }
}
