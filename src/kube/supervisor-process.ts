// The supervisor as a process: `crib kube play` starts one detached `crib kube supervise <key>`
// per pod (its own session, output to supervisor.log in the pod's dir) and records its pid;
// `crib kube down` finds it by that pid, checks from /proc that the pid is still that supervisor
// (a pid can be reused), and stops it.
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeStateStore } from './state-store.js';

export async function startSupervisor(store: KubeStateStore, key: string, cliPath: string): Promise<number> {
  const logFd = openSync(join(store.podDir(key), 'supervisor.log'), 'a', 0o600);
  try {
    const child = spawn(process.execPath, [cliPath, 'kube', 'supervise', key, '--state-dir', store.dir], {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      cwd: '/',
    });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start the supervisor of ${key}`);
    child.unref();
    await store.writePid(key, pid);
    return pid;
  } finally {
    closeSync(logFd);
  }
}

/** The pid of the pod's supervisor if that process is alive and is that supervisor. */
export async function liveSupervisor(store: KubeStateStore, key: string): Promise<number | undefined> {
  const pid = await store.readPid(key);
  if (pid === undefined) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (!cmdline) return undefined;
  const argv = cmdline.split('\0');
  const at = argv.indexOf('supervise');
  if (at < 1 || argv[at - 1] !== 'kube' || argv[at + 1] !== key) return undefined;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (/\) Z /.test(stat)) return undefined;
  return pid;
}

export async function stopSupervisor(store: KubeStateStore, key: string, graceMs = 10_000): Promise<void> {
  const pid = await liveSupervisor(store, key);
  if (pid === undefined) return;
  process.kill(pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if ((await liveSupervisor(store, key)) === undefined) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(pid, 'SIGKILL');
  while ((await liveSupervisor(store, key)) !== undefined) await new Promise((r) => setTimeout(r, 50));
}
