// Finding the pod init of a shared-PID pod from its namespaces, for the rollback of a
// RunPodSandbox a crash interrupted: crib-pinns may have started the init and the daemon died
// before it read (let alone wrote down) its pid. The init joins the pod's pinned net, ipc and uts
// namespaces, so a crib-pod-init in one of them is that pod's. Used at start-up only: it reads
// /proc once per process.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive, processStartTime } from '../runtime/process-identity.js';
import { isPodInit, stopPodInit } from './namespaces.js';

const KINDS = ['net', 'ipc', 'uts'] as const;

async function nsKey(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/** Pids of the crib-pod-init processes in any namespace pinned in `nsDir` (net, ipc, uts). */
export async function podInitsPinnedIn(nsDir: string): Promise<number[]> {
  const pinned = new Set((await Promise.all(KINDS.map((k) => nsKey(join(nsDir, k))))).filter((k) => k !== undefined));
  if (pinned.size === 0) return [];
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const comm = await readFile(`/proc/${name}/comm`, 'utf8').catch(() => '');
    if (comm.trim() !== 'crib-pod-init') continue;
    for (const kind of KINDS) {
      const key = await nsKey(`/proc/${name}/ns/${kind}`);
      if (key !== undefined && pinned.has(key)) {
        found.push(Number(name));
        break;
      }
    }
  }
  return found;
}

/**
 * Kills a pod's init: the recorded one if it is still that process (pid and start time), and
 * with `search`, any other crib-pod-init in the pod's pinned namespaces (one a crash kept from
 * being recorded).
 */
export async function killPodInits(rec: { podInitPid?: number; podInitStartTime?: string }, nsDir: string, search: boolean): Promise<number[]> {
  const pids = new Set(search ? await podInitsPinnedIn(nsDir) : []);
  if (rec.podInitPid && processAlive(rec.podInitPid, rec.podInitStartTime) && (await isPodInit(rec.podInitPid))) pids.add(rec.podInitPid);
  for (const pid of pids) await stopPodInit(pid);
  return [...pids];
}

/** The start time that names a pod init from now on (undefined when it is already gone). */
export function podInitStartTime(pid: number): string | undefined {
  return processStartTime(pid);
}
