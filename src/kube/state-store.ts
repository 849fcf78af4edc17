// The played pods' records, one directory per pod under the kube state dir
// (<dir>/pods/<namespace>_<name>/): state.json (what was played and what the supervisor made:
// sandbox id, container ids, restart counts, back-off), supervisor.pid (written once by `play`),
// supervisor.log, and the pod's volumes. state.json is replaced atomically (the daemon's own
// writer, store/atomic-file.ts), so `kube ps` or `kube down` in another process never reads half
// a record, and a crash leaves the old or the new one.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { BackoffEntry } from './backoff.js';
import type { HostVolume } from './volumes.js';

export const DEFAULT_KUBE_STATE_DIR = '/var/lib/crib/kube';
const MAX_STATE_BYTES = 8 * 1024 * 1024;

export type ContainerPhase = 'waiting' | 'running' | 'terminated';

export interface PlayedContainer {
  name: string;
  init: boolean;
  id?: string;
  /** The dead container kept for its logs, as kubelet keeps the last one. */
  previousId?: string;
  restartCount: number;
  phase: ContainerPhase;
  /** kubectl's words: ContainerCreating, CrashLoopBackOff, Completed, Error, ... */
  reason?: string;
  message?: string;
  exitCode?: number;
  startedAt?: number;
  finishedAt?: number;
  /** The startup probe passed (or there is none). */
  started: boolean;
  ready: boolean;
  backoff?: BackoffEntry;
  /** When each restart happened and when the container it replaced had exited (the last 32):
   * the back-off, seen from outside. */
  restarts: { exitedAt: number; at: number }[];
}

export interface PlayedPod {
  version: 1;
  name: string;
  namespace: string;
  uid: string;
  manifest: string;
  createdAt: number;
  /** The pod document as played (the supervisor reads it into the V1Pod model again). */
  pod: Record<string, unknown>;
  sources: Record<'configMaps' | 'secrets', Record<string, Record<string, string>>>;
  options: { address: string; logRoot: string; backoffBaseMs: number; backoffMaxMs: number; resolvConf: string };
  volumes: HostVolume[];
  sandboxId?: string;
  podIp?: string;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  message?: string;
  containers: PlayedContainer[];
}

export const podKey = (namespace: string, name: string) => `${namespace}_${name}`;

export class KubeStateStore {
  constructor(readonly dir: string) {}

  podDir(key: string): string {
    return join(this.dir, 'pods', key);
  }

  async keys(): Promise<string[]> {
    const entries = await readdir(join(this.dir, 'pods'), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  }

  async read(key: string): Promise<PlayedPod | undefined> {
    const file = join(this.podDir(key), 'state.json');
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text === undefined) return undefined;
    if (text.length > MAX_STATE_BYTES) throw new Error(`${file} is larger than ${MAX_STATE_BYTES} bytes`);
    const rec = JSON.parse(text) as PlayedPod;
    if (rec.version !== 1) throw new Error(`${file} has version ${String(rec.version)}; this crib reads version 1`);
    return rec;
  }

  async write(rec: PlayedPod): Promise<void> {
    const dir = this.podDir(podKey(rec.namespace, rec.name));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(dir, 'state.json'), JSON.stringify(rec, null, 1), 0o600);
  }

  async readPid(key: string): Promise<number | undefined> {
    const text = await readFile(join(this.podDir(key), 'supervisor.pid'), 'utf8').catch(() => undefined);
    const pid = text === undefined ? NaN : Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  async writePid(key: string, pid: number): Promise<void> {
    await writeFileAtomic(join(this.podDir(key), 'supervisor.pid'), `${pid}\n`, 0o600);
  }
}
