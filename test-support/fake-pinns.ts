// An in-memory crib-pinns (src/sandbox/namespaces.ts's PodNamespacePinner) for unit tests of the
// sandbox service: no root, no namespaces. "Pinned" namespaces are empty regular files at the
// paths the real ones would have, so a test sees what a pod leaves on disk; pod inits are pids
// in a set. It plays the node and outlives a SandboxService (a daemon restart is a new service
// over the same fake). What the real crib-pinns does is tested by root-test/sandbox/.
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AlreadyExistsError } from '../src/errors.js';
import type { PinOptions, PinnedNamespaces, PodNamespacePinner } from '../src/sandbox/namespaces.js';

export type PinnsVerb = 'pin' | 'unpin' | 'unmount' | 'startPodInit' | 'stopPodInit';

export class FakePinns implements PodNamespacePinner {
  /** Every call, "verb argument", in order. */
  readonly calls: string[] = [];
  /** Pinned dirs and what was asked for each. */
  readonly pinned = new Map<string, PinOptions>();
  /** Pod inits still running. */
  readonly podInits = new Set<number>();
  /** The dir of pinned namespaces each pod init was started in. */
  private readonly initDirs = new Map<number, string>();
  /** The next call of a verb fails with this error (consumed). */
  readonly failNext = new Map<PinnsVerb, Error>();
  private nextPid = 4000;

  private check(verb: PinnsVerb): void {
    const err = this.failNext.get(verb);
    if (err) {
      this.failNext.delete(verb);
      throw err;
    }
  }

  async pin(opts: PinOptions): Promise<PinnedNamespaces> {
    this.calls.push(`pin ${opts.dir}`);
    this.check('pin');
    // crib-pinns refuses to pin over an existing pin (EEXIST); so does the fake.
    if (this.pinned.has(opts.dir)) throw new AlreadyExistsError(`pinning namespaces in ${opts.dir}: File exists`);
    await mkdir(opts.dir, { recursive: true });
    const out: PinnedNamespaces = { dir: opts.dir };
    for (const kind of ['net', 'ipc', 'uts'] as const) {
      if (!opts[kind]) continue;
      out[kind] = join(opts.dir, kind);
      await writeFile(out[kind]!, '');
    }
    this.pinned.set(opts.dir, opts);
    return out;
  }

  async unpin(dir: string): Promise<void> {
    this.calls.push(`unpin ${dir}`);
    this.check('unpin');
    for (const kind of ['net', 'ipc', 'uts']) await rm(join(dir, kind), { force: true });
    await rmdir(dir).catch(() => undefined);
    this.pinned.delete(dir);
  }

  /** The pins go; their files stay (unpin deletes them), as after the real umount2. */
  async unmount(dir: string): Promise<void> {
    this.calls.push(`unmount ${dir}`);
    this.check('unmount');
    this.pinned.delete(dir);
  }

  async startPodInit(dir: string): Promise<number> {
    this.calls.push(`startPodInit ${dir}`);
    this.check('startPodInit');
    if (!this.pinned.has(dir)) throw new Error(`fake pinns: no namespaces pinned in ${dir}`);
    const pid = this.nextPid++;
    this.podInits.add(pid);
    this.initDirs.set(pid, dir);
    return pid;
  }

  async stopPodInit(pid: number): Promise<void> {
    this.calls.push(`stopPodInit ${pid}`);
    this.check('stopPodInit');
    this.podInits.delete(pid);
  }

  /** The recorded init, and with `search` any init started in the namespaces pinned in nsDir. */
  async stopPodInits(pod: { podInitPid?: number }, nsDir: string, search: boolean): Promise<number[]> {
    const pids = new Set<number>();
    if (pod.podInitPid !== undefined && this.podInits.has(pod.podInitPid)) pids.add(pod.podInitPid);
    if (search) for (const [pid, dir] of this.initDirs) if (dir === nsDir && this.podInits.has(pid)) pids.add(pid);
    for (const pid of pids) await this.stopPodInit(pid);
    return [...pids];
  }
}
