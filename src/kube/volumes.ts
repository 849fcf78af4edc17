// The pod's volumes on the host, laid out as kubelet lays them out under its pod dir:
// volumes/kubernetes.io~empty-dir/<name> (a tmpfs for medium Memory), kubernetes.io~configmap and
// kubernetes.io~secret (files projected from the command line's ConfigMaps and Secrets; Secrets
// on a tmpfs so they never reach the disk), and hostPath checked against its type. Everything made
// here lives under the pod dir, so `kube down` unmounts the tmpfs ones and removes the dir.
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Volume } from '@kubernetes/client-node/dist/gen/models/V1Volume.js';
import { InvalidArgumentError } from '../errors.js';
import type { DataSources } from './env.js';
import { memoryBytes } from './quantity.js';

const run = promisify(execFile);

export interface HostVolume {
  name: string;
  hostPath: string;
  /** configMap and secret volumes are always mounted read-only, as kubelet mounts them. */
  readOnly: boolean;
}

export const volumeDir = (podDir: string, plugin: string, name: string) => join(podDir, 'volumes', `kubernetes.io~${plugin}`, name);

/** Check what a volume needs from the command line before anything is made. */
export function checkVolumeSources(volumes: V1Volume[] | undefined, sources: DataSources, where: string): void {
  for (const v of volumes ?? []) {
    const ref = v.configMap ? { kind: 'ConfigMap', name: v.configMap.name!, data: sources.configMaps.get(v.configMap.name!), items: v.configMap.items, optional: v.configMap.optional, flag: '--configmap' }
      : v.secret ? { kind: 'Secret', name: v.secret.secretName!, data: sources.secrets.get(v.secret.secretName!), items: v.secret.items, optional: v.secret.optional, flag: '--secret' } : undefined;
    if (!ref) continue;
    if (!ref.data) {
      if (!ref.optional) throw new InvalidArgumentError(`${where}: volume "${v.name}" needs ${ref.kind} "${ref.name}": pass its manifest with ${ref.flag} FILE`);
      continue;
    }
    for (const it of ref.items ?? []) {
      if (!ref.data.has(it.key) && !ref.optional) throw new InvalidArgumentError(`${where}: volume "${v.name}": ${ref.kind} "${ref.name}" has no key "${it.key}"`);
    }
  }
}

async function mountTmpfs(dir: string, mode: number, sizeBytes?: number): Promise<void> {
  const opts = [`mode=0${mode.toString(8)}`, 'nosuid', 'nodev', ...(sizeBytes ? [`size=${sizeBytes}`] : [])].join(',');
  await run('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
}

async function project(dir: string, data: Map<string, Buffer> | undefined, items: { key: string; path: string; mode?: number }[] | undefined, defaultMode: number): Promise<void> {
  if (!data) return;
  const entries = items && items.length > 0
    ? items.filter((it) => data.has(it.key)).map((it) => ({ path: it.path, value: data.get(it.key)!, mode: it.mode ?? defaultMode }))
    : [...data].map(([k, v]) => ({ path: k, value: v, mode: defaultMode }));
  for (const e of entries) {
    const file = join(dir, e.path);
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, e.value, { mode: e.mode, flag: 'wx' });
    await chmod(file, e.mode);
  }
}

async function checkHostPath(path: string, type: string | undefined, where: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  switch (type ?? '') {
    case '':
      return;
    case 'DirectoryOrCreate':
      if (!st) await mkdir(path, { recursive: true, mode: 0o755 });
      else if (!st.isDirectory()) throw new InvalidArgumentError(`${where}: hostPath ${path} exists and is not a directory`);
      return;
    case 'Directory':
      if (!st?.isDirectory()) throw new InvalidArgumentError(`${where}: hostPath ${path} is not a directory (type Directory)`);
      return;
    case 'FileOrCreate':
      if (!st) await writeFile(path, '', { mode: 0o644, flag: 'wx' });
      else if (!st.isFile()) throw new InvalidArgumentError(`${where}: hostPath ${path} exists and is not a file`);
      return;
    case 'File':
      if (!st?.isFile()) throw new InvalidArgumentError(`${where}: hostPath ${path} is not a file (type File)`);
      return;
    case 'Socket':
      if (!st?.isSocket()) throw new InvalidArgumentError(`${where}: hostPath ${path} is not a socket (type Socket)`);
      return;
    default:
      throw new InvalidArgumentError(`${where}: hostPath type "${type}" is not supported`);
  }
}

/** Make every volume's host side; returns where each is. On failure the caller removes podDir. */
export async function prepareVolumes(podDir: string, volumes: V1Volume[] | undefined, sources: DataSources, where: string): Promise<HostVolume[]> {
  const out: HostVolume[] = [];
  for (const v of volumes ?? []) {
    if (v.hostPath) {
      await checkHostPath(v.hostPath.path, v.hostPath.type, `${where}: volume "${v.name}"`);
      out.push({ name: v.name, hostPath: v.hostPath.path, readOnly: false });
      continue;
    }
    const plugin = v.emptyDir ? 'empty-dir' : v.configMap ? 'configmap' : 'secret';
    const dir = volumeDir(podDir, plugin, v.name);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    if (v.emptyDir) {
      // Shared by every container whatever its user: world-writable, as kubelet makes it.
      if (v.emptyDir.medium === 'Memory') {
        await mountTmpfs(dir, 0o777, v.emptyDir.sizeLimit !== undefined ? memoryBytes(v.emptyDir.sizeLimit as string, `volume ${v.name} emptyDir.sizeLimit`) : undefined);
      }
      await chmod(dir, 0o777);
      out.push({ name: v.name, hostPath: dir, readOnly: false });
    } else if (v.configMap) {
      await project(dir, sources.configMaps.get(v.configMap.name!), v.configMap.items as never, v.configMap.defaultMode ?? 0o644);
      out.push({ name: v.name, hostPath: dir, readOnly: true });
    } else if (v.secret) {
      await mountTmpfs(dir, 0o755);
      await project(dir, sources.secrets.get(v.secret.secretName!), v.secret.items as never, v.secret.defaultMode ?? 0o644);
      out.push({ name: v.name, hostPath: dir, readOnly: true });
    }
  }
  return out;
}

/** Every mount point under `dir` (deepest first), from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => !!p).map(unescape)
    .filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** Unmount the tmpfs volumes under a pod dir (before it is removed). */
export async function unmountVolumes(podDir: string): Promise<void> {
  for (const m of await mountsUnder(podDir)) await run('umount', [m]);
}
