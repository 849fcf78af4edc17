// What `crib kube ps` shows for a played pod, in kubectl's words: READY (ready app containers of
// all), STATUS (Init:1/2, PodInitializing, ContainerCreating, Running, CrashLoopBackOff, Error,
// Completed, ...), RESTARTS and AGE ("42s", "5m", "3h", "2d").
import type { PlayedPod } from './state-store.js';

export interface PodRow {
  namespace: string;
  name: string;
  ready: string;
  status: string;
  restarts: number;
  age: string;
}

export function shortAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 3600 * 2) return `${Math.floor(s / 60)}m`;
  if (s < 86400 * 2) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function podStatus(p: PlayedPod, supervisorAlive: boolean): string {
  if (!supervisorAlive) return 'Unknown';
  const inits = p.containers.filter((c) => c.init);
  const apps = p.containers.filter((c) => !c.init);
  if (p.phase === 'Succeeded') return 'Completed';
  if (!p.sandboxId) return p.message ? 'SandboxError' : 'Pending';
  const pendingInit = inits.findIndex((c) => !(c.phase === 'terminated' && c.exitCode === 0));
  if (pendingInit >= 0) {
    const c = inits[pendingInit]!;
    if (c.reason === 'CrashLoopBackOff' || (c.phase === 'terminated' && c.exitCode !== 0)) return `Init:${c.reason === 'CrashLoopBackOff' ? 'CrashLoopBackOff' : 'Error'}`;
    return `Init:${pendingInit}/${inits.length}`;
  }
  let status = p.phase === 'Failed' ? 'Error' : 'Running';
  for (const c of apps) {
    if (c.phase === 'waiting' && c.reason && c.reason !== 'ContainerCreating') return c.reason;
    if (c.phase === 'waiting' && c.reason === 'ContainerCreating') status = inits.length > 0 ? 'PodInitializing' : 'ContainerCreating';
    if (c.phase === 'terminated' && c.reason) status = c.reason;
  }
  return status;
}

export function podRow(p: PlayedPod, supervisorAlive: boolean, now = Date.now()): PodRow {
  const apps = p.containers.filter((c) => !c.init);
  const inInit = p.containers.some((c) => c.init && !(c.phase === 'terminated' && c.exitCode === 0));
  const counted = inInit ? p.containers : apps;
  return {
    namespace: p.namespace,
    name: p.name,
    ready: `${apps.filter((c) => c.ready).length}/${apps.length}`,
    status: podStatus(p, supervisorAlive),
    restarts: counted.reduce((n, c) => n + c.restartCount, 0),
    age: shortAge(now - p.createdAt),
  };
}

export const isPodReady = (p: PlayedPod): boolean => p.containers.filter((c) => !c.init).every((c) => c.ready);
