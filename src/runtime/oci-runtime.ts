// Driving an OCI runtime through runc's command line: crib-runtime by default, runc or crun as
// RuntimeClass handlers. Every failure carries the runtime's own stderr, which says what broke.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DeadlineExceededError, FailedPreconditionError, InternalError, NotFoundError } from '../errors.js';
import { NO_FEATURES, probeRuntimeFeatures, type RuntimeFeatures } from './runtime-features.js';
import { execFileWithoutFork } from '../sys/exec-file.js';

export interface OciState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped' | 'paused';
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export class OciRuntimeError extends InternalError {
  constructor(readonly verb: string, readonly stderr: string, readonly exitCode: number | null) {
    super(`${verb} failed: ${stderr.trim() || `exit code ${exitCode}`}`);
  }
}

/** The runtime outlived its time and was killed (SIGKILL). */
export class OciRuntimeTimeout extends Error {
  constructor(readonly verb: string, readonly timeoutMs: number) {
    super(`${verb} did not finish within ${timeoutMs} ms and was killed`);
  }
}

/**
 * Runs the runtime through posix_spawn (sys/exec-file.ts), never a fork of the daemon: start and
 * kill are on the call paths of StartContainer and StopContainer, and delete runs right after
 * RemoveContainer answers; a fork stalled whatever RPC came next for as long as it took.
 */
async function run(binary: string, args: string[], input?: string, timeoutMs = 60_000): Promise<string> {
  // SIGKILL at the timeout: a runtime that ignores SIGTERM must not outlive its time
  // (checkpoint's criu dies with it: criu.h).
  const r = await execFileWithoutFork(binary, args, { timeoutMs, maxBuffer: 16 << 20, input });
  if (!r.error) return r.stdout;
  const verb = `${binary} ${args.find((a) => !a.startsWith('-') && !a.startsWith('/')) ?? ''}`.trim();
  if (r.killed) throw new OciRuntimeTimeout(verb, timeoutMs);
  throw new OciRuntimeError(verb, r.stderr || r.error.message, r.code);
}

export class OciRuntime {
  /** What the handler supports; read once by probeFeatures() when the daemon starts. */
  features: RuntimeFeatures = NO_FEATURES;

  /**
   * stateDirPerId: the runtime is known to keep each container's state in <root>/<id>
   * (crib-runtime: native/src/state.c), so a missing dir means no state without running it. Of
   * another runtime's layout nothing is assumed.
   */
  constructor(
    readonly name: string,
    readonly binary: string,
    readonly root: string,
    private readonly stateDirPerId = false,
  ) {}

  async probeFeatures(): Promise<RuntimeFeatures> {
    this.features = await probeRuntimeFeatures(this.name, this.binary);
    return this.features;
  }

  private args(...rest: string[]): string[] {
    return ['--root', this.root, ...rest];
  }

  /**
   * Whether the runtime may keep state of `id`: false only when that is known without running it
   * (a runtime with a state dir per id, and no such dir: deleted already, or never created).
   * Without state, state and delete have nothing to find and are not run.
   */
  hasState(id: string): boolean {
    return !this.stateDirPerId || existsSync(join(this.root, id));
  }

  /**
   * crib-runtime's `mount-template`: pins the template its containers' mount namespaces are
   * unshared from (native/src/mount-template.h); idempotent. Only crib-runtime has the verb.
   */
  async makeMountTemplate(): Promise<void> {
    await run(this.binary, this.args('mount-template'));
  }

  /** Unpins that template (nothing there: nothing to do). */
  async removeMountTemplate(): Promise<void> {
    await run(this.binary, this.args('mount-template', '--remove'));
  }

  async start(id: string): Promise<void> {
    await run(this.binary, this.args('start', id));
  }

  async state(id: string): Promise<OciState | undefined> {
    try {
      return JSON.parse(await run(this.binary, this.args('state', id))) as OciState;
    } catch (err) {
      if (err instanceof OciRuntimeError && /does not exist|not exist|no such/i.test(err.stderr)) return undefined;
      throw err;
    }
  }

  async kill(id: string, signal: string | number, all = false): Promise<void> {
    try {
      await run(this.binary, this.args('kill', ...(all ? ['--all'] : []), id, String(signal)));
    } catch (err) {
      // A container that already exited is not an error for a caller that wanted it dead.
      if (err instanceof OciRuntimeError && /not running|no such process|stopped|does not exist/i.test(err.stderr)) return;
      throw err;
    }
  }

  /** Remove the runtime's state; a container the runtime never heard of is already gone. */
  async delete(id: string, force = true): Promise<void> {
    try {
      await run(this.binary, this.args('delete', ...(force ? ['--force'] : []), id));
    } catch (err) {
      if (err instanceof OciRuntimeError && /does not exist|not exist|no such/i.test(err.stderr)) return;
      throw err;
    }
  }

  /**
   * `checkpoint --image-path I --work-path W [--leave-running] ID`: crib-runtime's and runc's
   * verb alike. Fails with the runtime's stderr (FailedPreconditionError: the container or the
   * node cannot be checkpointed, and the message says why) or DeadlineExceededError.
   */
  async checkpoint(id: string, o: { imagePath: string; workPath: string; leaveRunning: boolean; timeoutMs: number }): Promise<void> {
    const args = this.args('checkpoint', '--image-path', o.imagePath, '--work-path', o.workPath);
    if (o.leaveRunning) args.push('--leave-running');
    try {
      await run(this.binary, [...args, id], undefined, o.timeoutMs);
    } catch (err) {
      if (err instanceof OciRuntimeTimeout) {
        throw new DeadlineExceededError(`checkpointing container ${id}: runtime ${this.name} did not finish within ${o.timeoutMs} ms and was killed`);
      }
      throw this.refusal(err, id, `checkpointing container ${id} with runtime ${this.name}`);
    }
  }

  /**
   * `pause ID`: freezes every process of the container (its cgroup's freezer); `resume ID` thaws
   * them. runc's verbs, and crib-runtime's. A container that cannot be frozen (no freezer, a
   * process stuck in the kernel) fails with the runtime's message.
   */
  async pause(id: string): Promise<void> {
    await this.freezerVerb('pause', id);
  }

  /** `resume ID`: see pause. A container that is not paused is no error (runc and crun refuse it). */
  async resume(id: string): Promise<void> {
    await this.freezerVerb('resume', id, /not paused/i);
  }

  /** `verb ID`; a failure whose stderr matches `fine` is none. */
  private async freezerVerb(verb: 'pause' | 'resume', id: string, fine?: RegExp): Promise<void> {
    try {
      await run(this.binary, this.args(verb, id));
    } catch (err) {
      if (err instanceof OciRuntimeError && fine?.test(err.stderr)) return;
      throw this.refusal(err, id, `${verb === 'pause' ? 'pausing' : 'resuming'} container ${id} with runtime ${this.name}`);
    }
  }

  async update(id: string, resources: unknown): Promise<void> {
    try {
      await run(this.binary, this.args('update', '--resources', '-', id), JSON.stringify(resources));
    } catch (err) {
      throw this.refusal(err, id, `updating resources of ${id}`);
    }
  }

  /**
   * What a verb on container `id` failing means to the caller: NotFoundError when the runtime
   * does not know the container, else FailedPreconditionError with the runtime's stderr after
   * `doing` (what was asked). Any other error (the runtime would not start) as it came.
   */
  private refusal(err: unknown, id: string, doing: string): unknown {
    if (!(err instanceof OciRuntimeError)) return err;
    if (/does not exist/i.test(err.stderr)) return new NotFoundError(`container ${id} is not known to runtime ${this.name}`);
    return new FailedPreconditionError(`${doing}: ${err.stderr.trim()}`);
  }
}
