// Where a container's or pod's cgroup lives, computed exactly as the native runtime computes it
// (native/src/cgroup/cgroup-path.c and cgroup-detect.c): the stats reader must look at the
// directory crib-runtime created, whichever spelling of linux.cgroupsPath the spec carried.
import { statfsSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';

/** cgroup v1 (one hierarchy per controller under root) or v2 (one unified hierarchy at root). */
export type CgroupMode = 1 | 2;

export interface CgroupLayout {
  mode: CgroupMode;
  /** "/sys/fs/cgroup" on v1 (controllers below it), the cgroup2 mount on v2. */
  root: string;
  /** v1: the mount table whose cgroup mounts under root are the hierarchies; this process's (/proc/self/mountinfo) unless given (tests). */
  mountinfo?: string;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * The host's cgroup layout. CRIB_CGROUP_ROOT and CRIB_CGROUP_MODE (v1|v2) override detection,
 * as they do for crib-runtime, so tests can point both at a prepared tree.
 */
export function cgroupLayout(env: NodeJS.ProcessEnv = process.env): CgroupLayout {
  let root = env.CRIB_CGROUP_ROOT || '/sys/fs/cgroup';
  if (!root.startsWith('/')) {
    throw new InvalidArgumentError(`CRIB_CGROUP_ROOT ${root}: must be an absolute path`);
  }
  while (root.length > 1 && root.endsWith('/')) root = root.slice(0, -1);
  const mode = env.CRIB_CGROUP_MODE;
  if (mode) {
    if (mode === 'v1') return { mode: 1, root };
    if (mode === 'v2') return { mode: 2, root };
    throw new InvalidArgumentError(`CRIB_CGROUP_MODE ${mode}: must be v1 or v2`);
  }
  // A unified mount at the root means v2; the tmpfs of a v1 or hybrid layout means v1.
  return { mode: statfsSync(root).type === CGROUP2_SUPER_MAGIC ? 2 : 1, root };
}

const badUnitPart = (s: string): boolean => s.includes('/') || s === '..' || s === '.';

function normalizePlain(input: string): string {
  const parts: string[] = [];
  for (const part of input.split('/')) {
    if (part === '..') throw new InvalidArgumentError(`cgroupsPath ${input}: ".." is not allowed`);
    if (part !== '' && part !== '.') parts.push(part);
  }
  if (parts.length === 0) {
    throw new InvalidArgumentError(
      `cgroupsPath ${input}: names the root cgroup, which crib will not manage`);
  }
  return `/${parts.join('/')}`;
}

/** "a-b-c.slice" → ["a.slice", "a-b.slice", "a-b-c.slice"]; "-.slice" is the root (none). */
function expandSlice(input: string, slice: string): string[] {
  const suffix = '.slice';
  if (slice.includes('/') || slice.length <= suffix.length || !slice.endsWith(suffix)) {
    throw new InvalidArgumentError(
      `cgroupsPath ${input}: slice ${slice} is not a systemd slice name (x-y.slice)`);
  }
  if (slice === '-.slice') return [];
  const base = slice.slice(0, -suffix.length);
  if (base.startsWith('-') || base.endsWith('-') || base.includes('--')) {
    throw new InvalidArgumentError(`cgroupsPath ${input}: slice ${slice} has a misplaced dash`);
  }
  const out: string[] = [];
  for (let i = 0; i <= base.length; i++) {
    if (i === base.length || base[i] === '-') out.push(`${base.slice(0, i)}${suffix}`);
  }
  return out;
}

function resolveSystemd(input: string): string {
  const [sliceIn, prefix, name] = input.split(':') as [string, string, string];
  if (name === '') throw new InvalidArgumentError(`cgroupsPath ${input}: the unit name is empty`);
  if (badUnitPart(prefix) || badUnitPart(name)) {
    throw new InvalidArgumentError(
      `cgroupsPath ${input}: prefix and name must not contain '/' or be ".."`);
  }
  // runc's default parent when the slice is left out.
  const slice = sliceIn === '' ? 'system.slice' : sliceIn;
  const parts = expandSlice(input, slice);
  if (name.length > 6 && name.endsWith('.slice')) parts.push(name);
  else parts.push(prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`);
  return `/${parts.join('/')}`;
}

const isSystemdForm = (path: string): boolean =>
  !path.startsWith('/') && path.split(':').length === 3;

/**
 * An OCI linux.cgroupsPath → the cgroup's path inside each hierarchy, starting with '/'.
 * The systemd form "slice:prefix:name" becomes nested slices plus "<prefix>-<name>.scope"; an
 * empty cgroupsPath means "/crib/<id>". Throws InvalidArgumentError for ".." and malformed units.
 */
export function resolveCgroupPath(cgroupsPath: string | undefined, id: string): string {
  if (!cgroupsPath) {
    if (id === '' || badUnitPart(id)) {
      throw new InvalidArgumentError(`container id "${id}": cannot name a cgroup`);
    }
    return `/crib/${id}`;
  }
  return isSystemdForm(cgroupsPath) ? resolveSystemd(cgroupsPath) : normalizePlain(cgroupsPath);
}

/**
 * The pod's own cgroup from PodSandboxConfig.linux.cgroupParent, where crib puts the pod's
 * containers (src/container/oci-spec/cgroups-path.ts): a systemd slice name ("kubepods-pod1.slice",
 * or a path ending in one) nests by dash; a cgroupfs path is normalized. Without a parent the pod
 * has no cgroup of its own (its containers sit under the shared /crib), so: undefined.
 */
export function resolvePodCgroupPath(cgroupParent: string | undefined): string | undefined {
  if (!cgroupParent) return undefined;
  const base = cgroupParent.split('/').filter((p) => p !== '').pop() ?? '';
  if (base.endsWith('.slice')) {
    if (cgroupParent.split('/').includes('..')) {
      throw new InvalidArgumentError(`cgroupParent ${cgroupParent}: ".." is not allowed`);
    }
    return `/${expandSlice(cgroupParent, base).join('/')}`;
  }
  return normalizePlain(cgroupParent);
}
