// `crib kube play`, `kube down` and `kube ps`: the verbs over the manifest reader, the
// translation to CRI configs, the state store and the supervisor processes.
//
// play checks everything it can before it makes anything (the manifest, the ConfigMaps and
// Secrets it needs, that the pod is not already played, that the daemon answers), then for each
// pod makes its dir and volumes, writes its record and starts its supervisor, which makes the
// sandbox and containers. A failure undoes what was made for that pod.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { CriClient } from '../client/cri-client.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { loadSources, sourcesToJson } from './config-sources.js';
import { containerEnv, type DataSources } from './env.js';
import { readManifest, type PlayablePod } from './manifest.js';
import { isPodReady, podRow, type PodRow } from './pod-status.js';
import { podLogDirectory } from './sandbox-config.js';
import { KubeStateStore, podKey, type PlayedPod } from './state-store.js';
import { PodSupervisor } from './supervisor.js';
import { liveSupervisor, startSupervisor, stopSupervisor } from './supervisor-process.js';
import { checkVolumeSources, prepareVolumes, unmountVolumes } from './volumes.js';
import { isoTime } from '../time.js';

export interface PlayOptions {
  manifest: string;
  stateDir: string;
  address: string;
  cliPath: string;
  configMaps: string[];
  secrets: string[];
  logRoot: string;
  resolvConf: string;
  backoffBaseMs: number;
  backoffMaxMs: number;
  wait: boolean;
  timeoutMs: number;
}

/** Everything a pod refers to by name must be there before anything is made. */
function checkReferences(p: PlayablePod, sources: DataSources): void {
  checkVolumeSources(p.pod.spec!.volumes, sources, p.source);
  const facts = { name: p.name, namespace: p.namespace, uid: '', podIp: '', nodeName: '' };
  for (const c of [...(p.pod.spec!.initContainers ?? []), ...p.pod.spec!.containers]) {
    try {
      containerEnv(c.env as never, facts, sources, `container ${c.name}`);
    } catch (err) {
      throw new InvalidArgumentError(`${p.source}: ${(err as Error).message}`);
    }
  }
}

export async function play(cri: CriClient, o: PlayOptions, say: (line: string) => void): Promise<void> {
  const pods = await readManifest(o.manifest);
  const sources = await loadSources(o.configMaps, o.secrets);
  for (const p of pods) checkReferences(p, sources);
  const store = new KubeStateStore(o.stateDir);
  for (const p of pods) {
    if (await store.read(podKey(p.namespace, p.name))) {
      throw new FailedPreconditionError(`pod ${p.namespace}/${p.name} is already played: run "crib kube down ${o.manifest}" first`);
    }
  }
  await cri.runtime.Version({}, { deadline: Date.now() + 10_000 });
  const resolvConf = await readFile(o.resolvConf, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new InvalidArgumentError(`cannot read ${o.resolvConf} for the pods' DNS config (${err.code ?? err.message}): give another with --resolv-conf`);
  });
  await mkdir(join(o.stateDir, 'pods'), { recursive: true, mode: 0o700 });
  const played: PlayedPod[] = [];
  for (const p of pods) {
    const key = podKey(p.namespace, p.name);
    const podDir = store.podDir(key);
    await mkdir(podDir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      // A dir without a record: a play that was interrupted. down cleans it up.
      if (err.code === 'EEXIST') throw new FailedPreconditionError(`${podDir} is left from an interrupted play of ${p.namespace}/${p.name}: run "crib kube down ${o.manifest}" first`);
      throw err;
    });
    try {
      const volumes = await prepareVolumes(podDir, p.pod.spec!.volumes, sources, p.source);
      const rec: PlayedPod = {
        version: 1,
        name: p.name,
        namespace: p.namespace,
        uid: p.pod.metadata?.uid ?? randomUUID(),
        manifest: o.manifest,
        createdAt: Date.now(),
        pod: p.raw,
        sources: sourcesToJson(sources),
        options: { address: o.address, logRoot: o.logRoot, backoffBaseMs: o.backoffBaseMs, backoffMaxMs: o.backoffMaxMs, resolvConf },
        volumes,
        phase: 'Pending',
        containers: [
          ...(p.pod.spec!.initContainers ?? []).map((c) => ({ name: c.name, init: true })),
          ...p.pod.spec!.containers.map((c) => ({ name: c.name, init: false })),
        ].map((c) => ({ ...c, restartCount: 0, phase: 'waiting' as const, started: false, ready: false, restarts: [] })),
      };
      await store.write(rec);
      const pid = await startSupervisor(store, key, o.cliPath);
      played.push(rec);
      say(`pod/${p.name} played in namespace ${p.namespace} (uid ${rec.uid}, supervisor pid ${pid})`);
    } catch (err) {
      await unmountVolumes(podDir).catch(() => undefined);
      await rm(podDir, { recursive: true, force: true });
      throw err;
    }
  }
  if (o.wait) await waitReady(store, played, o.timeoutMs, say);
}

/** The last lines of a container's current (or previous) log file, without the CRI prefix. */
async function lastLogLines(rec: PlayedPod, name: string, restartCount: number, n = 20): Promise<string[]> {
  const dir = join(podLogDirectory(rec.options.logRoot, rec), name);
  for (const attempt of [restartCount, restartCount - 1]) {
    if (attempt < 0) continue;
    const text = await readFile(join(dir, `${attempt}.log`), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    // CRI log lines: "<time> <stream> <P|F> <text>"; partial lines (P) join the next.
    const lines: string[] = [];
    let partial = '';
    for (const l of text.split('\n')) {
      const m = /^\S+ (?:stdout|stderr) ([PF]) ?(.*)$/.exec(l);
      if (!m) continue;
      if (m[1] === 'P') partial += m[2];
      else {
        lines.push(partial + m[2]);
        partial = '';
      }
    }
    if (lines.length > 0) return lines.slice(-n);
  }
  return [];
}

async function waitReady(store: KubeStateStore, pods: PlayedPod[], timeoutMs: number, say: (line: string) => void): Promise<void> {
  const until = Date.now() + timeoutMs;
  const pending = new Set(pods.map((p) => podKey(p.namespace, p.name)));
  for (;;) {
    for (const key of [...pending]) {
      const rec = await store.read(key);
      if (!rec) throw new NotFoundError(`pod ${key} was taken down while waiting for it`);
      if (isPodReady(rec) || rec.phase === 'Succeeded') {
        pending.delete(key);
        say(`pod/${rec.name} is ${rec.phase === 'Succeeded' ? 'Completed' : 'Ready'}`);
        continue;
      }
      const alive = (await liveSupervisor(store, key)) !== undefined;
      if (rec.phase === 'Failed' || !alive || Date.now() > until) {
        throw new FailedPreconditionError(await failureReport(store, rec, !alive ? 'its supervisor exited' : rec.phase === 'Failed' ? 'it failed' : `it was not Ready within ${timeoutMs / 1000}s`));
      }
    }
    if (pending.size === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function failureReport(store: KubeStateStore, rec: PlayedPod, why: string): Promise<string> {
  const row = podRow(rec, true);
  const lines = [`pod ${rec.namespace}/${rec.name} is not Ready: ${why} (status ${row.status}, ready ${row.ready}, restarts ${row.restarts})${rec.message ? `: ${rec.message}` : ''}`];
  const bad = rec.containers.find((c) => c.init && !(c.phase === 'terminated' && c.exitCode === 0)) ?? rec.containers.find((c) => !c.init && !c.ready);
  if (bad) {
    lines.push(`container ${bad.name}: ${bad.phase}${bad.reason ? ` (${bad.reason})` : ''}${bad.exitCode !== undefined ? `, exit code ${bad.exitCode}` : ''}${bad.message ? `: ${bad.message}` : ''}`);
    const logs = await lastLogLines(rec, bad.name, bad.restartCount);
    lines.push(logs.length > 0 ? `last log lines of ${bad.name}:\n${logs.map((l) => `  ${l}`).join('\n')}` : `container ${bad.name} logged nothing`);
  }
  if (!(await liveSupervisor(store, podKey(rec.namespace, rec.name)))) {
    const log = await readFile(join(store.podDir(podKey(rec.namespace, rec.name)), 'supervisor.log'), 'utf8').catch(() => '');
    if (log.trim()) lines.push(`supervisor log:\n${log.trim().split('\n').slice(-10).map((l) => `  ${l}`).join('\n')}`);
  }
  lines.push(`Take it down with "crib kube down ${rec.manifest}".`);
  return lines.join('\n');
}

/** Remove everything play made for one pod: supervisor, sandboxes, containers, volumes, logs, state. */
async function downOne(cri: CriClient, store: KubeStateStore, key: string): Promise<PlayedPod | undefined> {
  // The supervisor first: once it is gone, the record no longer changes under us.
  await stopSupervisor(store, key);
  const rec = await store.read(key);
  if (rec) {
    // Found by kubelet's uid label, so a sandbox the supervisor made but had not recorded yet
    // is removed too. Removing a sandbox removes its containers.
    const ids = new Set([...(rec.sandboxId ? [rec.sandboxId] : []), ...(await PodSupervisor.sandboxesOf(cri, rec.uid))]);
    for (const id of ids) {
      await cri.runtime.StopPodSandbox({ podSandboxId: id }, { deadline: Date.now() + 120_000 }).catch((err: { code?: number }) => {
        if (err.code !== 5) throw err;
      });
      await cri.runtime.RemovePodSandbox({ podSandboxId: id }, { deadline: Date.now() + 120_000 }).catch((err: { code?: number }) => {
        if (err.code !== 5) throw err;
      });
    }
    await rm(podLogDirectory(rec.options.logRoot, rec), { recursive: true, force: true });
  }
  const podDir = store.podDir(key);
  await unmountVolumes(podDir);
  await rm(podDir, { recursive: true, force: true });
  return rec;
}

export async function down(cri: CriClient, o: { manifest: string; stateDir: string }, say: (line: string) => void): Promise<void> {
  const pods = await readManifest(o.manifest);
  const store = new KubeStateStore(o.stateDir);
  const keys = pods.map((p) => podKey(p.namespace, p.name));
  const present = new Set(await store.keys());
  const missing = keys.filter((k) => !present.has(k));
  if (missing.length === keys.length) throw new NotFoundError(`no pod of ${o.manifest} is played (${keys.map((k) => k.replace('_', '/')).join(', ')}): see "crib kube ps"`);
  await cri.runtime.Version({}, { deadline: Date.now() + 10_000 });
  for (const key of keys.filter((k) => present.has(k))) {
    const rec = await downOne(cri, store, key);
    say(`pod/${rec?.name ?? key} removed`);
  }
  for (const k of missing) say(`pod ${k.replace('_', '/')} was not played`);
}

export async function listPlayed(stateDir: string): Promise<{ row: PodRow; record: Omit<PlayedPod, 'sources'>; supervisorPid?: number }[]> {
  const store = new KubeStateStore(stateDir);
  const out = [];
  for (const key of await store.keys()) {
    const rec = await store.read(key).catch(() => undefined);
    if (!rec) continue;
    const pid = await liveSupervisor(store, key);
    const { sources: _omit, ...record } = rec;
    out.push({ row: podRow(rec, pid !== undefined), record: { ...record, options: { ...record.options, resolvConf: '' } }, supervisorPid: pid });
  }
  return out;
}

/** `crib kube supervise KEY`: the detached supervisor's main. */
export async function supervise(cri: CriClient, stateDir: string, key: string): Promise<void> {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?_[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(key)) throw new InvalidArgumentError(`"${key}" is not a played pod's namespace_name`);
  const store = new KubeStateStore(stateDir);
  const sup = new PodSupervisor(store, key, cri);
  await sup.load();
  // down stops the supervisor before it removes anything: stop at once (the state on disk is
  // always whole: it is replaced by rename).
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  console.error(`${isoTime()} supervising ${key} on ${hostname()} (pid ${process.pid})`);
  await sup.run();
}
