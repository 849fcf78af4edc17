// The container's mounts, in containerd's layout: the kernel filesystems every container gets
// (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup), then the pod files
// (/etc/hostname, /etc/hosts, /etc/resolv.conf, the pod's /dev/shm) and kubelet's CRI mounts,
// shallowest first so a parent is mounted before what is mounted inside it. A CRI mount on a
// path replaces whatever default would have been there (and a CRI /dev replaces all of /dev/*).
import { lstat, mkdir, realpath, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../../errors.js';
import type { Mount__Output } from '../../gen/runtime/v1/Mount.js';
import type { NamespaceMode__Output } from '../../gen/runtime/v1/NamespaceMode.js';
import { isImageVolume } from '../image-volumes.js';
import { checkCleanPath } from './clean-path.js';
import { isShared, isSlave, lookupMount } from './mount-info.js';
import { MAX_ID_MAPPINGS } from '../../sandbox/user-namespace.js';
import type { OciIdMapping, OciMount } from './oci-types.js';

const SHM_SIZE = 'size=65536k';

export interface MountInput {
  criMounts: Mount__Output[];
  privileged: boolean;
  readonlyRootfs: boolean;
  /** The container's IPC namespace mode: NODE shares the host's /dev/shm. */
  ipcMode: NamespaceMode__Output;
  /** Pod files on the host; a missing one is simply not mounted. */
  hostsPath?: string;
  resolvPath?: string;
  hostnamePath?: string;
  shmPath?: string;
  /** The runtime handler can do recursive read-only ("rro") mounts. */
  recursiveReadOnlySupported: boolean;
  /**
   * Where each image volume (a CRI mount with `image` set) is mounted on the host, by its index
   * in criMounts (container/image-volumes.ts mounts them before the spec is built).
   */
  imageVolumeSources?: ReadonlyMap<number, string>;
  /**
   * The pod's user namespace maps, when it has its own: mounts may then carry id mappings
   * (idmapped binds).
   */
  podUserns?: { uidMappings: OciIdMapping[]; gidMappings: OciIdMapping[] };
}

export interface MountResult {
  mounts: OciMount[];
  /** "rslave"/"rshared" when a CRI mount's propagation needs the rootfs to propagate too. */
  rootfsPropagation?: string;
}

function defaultMounts(privileged: boolean): OciMount[] {
  const rw = privileged ? 'rw' : 'ro';
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', SHM_SIZE] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', SHM_SIZE] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', rw] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', rw] },
  ];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

type Request = {
  containerPath: string; hostPath: string; readonly: boolean; propagation: Mount__Output['propagation']; recursiveReadOnly: boolean;
  index?: number;
  /** An image volume: hostPath is its read-only overlay, made by the daemon. */
  isImage?: boolean;
};

/**
 * An image volume is bound read-only, nosuid, nodev and noexec whatever the mount asked (the CRI
 * says image mounts are read-only by definition; noexec and the rest as CRI-O and KEP-4639), and
 * private: the daemon's overlay has nothing under it to propagate.
 */
const IMAGE_VOLUME_OPTIONS = ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'];

/** A validated bind mount: where its source is (or will be, once created) and its options. */
interface PlannedBind {
  containerPath: string;
  hostPath: string;
  /** The source with symlinks resolved: the existing path, or the path mkdir will create. */
  source: string;
  /**
   * Directories to make, outermost first, when the source does not exist yet: containerd
   * creates a missing host directory rather than failing the container, so do we.
   */
  create: string[];
  options: string[];
  field: string;
}

/**
 * Where a host path is, or will be once its missing directories are made: symlinks in its
 * existing part resolved, the missing tail appended. Refuses (creating nothing) a path that
 * could not be made: a missing part under a file, or under a symlink that leads nowhere.
 */
async function plannedSource(hostPath: string, field: string): Promise<{ source: string; create: string[] }> {
  const missing: string[] = [];
  let at = hostPath;
  for (;;) {
    let real: string;
    try {
      real = await realpath(at);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTDIR') {
        throw new FailedPreconditionError(`${field}.hostPath ${hostPath} does not exist and cannot be created: a part of it is not a directory`, { cause: err });
      }
      if (code !== 'ENOENT') throw new FailedPreconditionError(`${field}.hostPath ${hostPath} cannot be resolved: ${code ?? err}`, { cause: err });
      // ENOENT: either `at` is missing, or it is a symlink to nothing (which mkdir cannot pass).
      if (await lstat(at).then(() => true, () => false)) {
        throw new FailedPreconditionError(`${field}.hostPath ${hostPath} does not exist and cannot be created: ${at} is a symlink to a missing path`);
      }
      missing.unshift(at);
      at = dirname(at);
      continue;
    }
    if (missing.length === 0) return { source: real, create: [] };
    if (!(await stat(real)).isDirectory()) {
      throw new FailedPreconditionError(`${field}.hostPath ${hostPath} does not exist and cannot be created: ${at} is not a directory`);
    }
    return { source: join(real, ...missing.map((m) => basename(m))), create: missing };
  }
}

async function planBind(r: Request, recursiveReadOnlySupported: boolean): Promise<PlannedBind> {
  const field = r.index === undefined ? r.containerPath : `mounts[${r.index}]`;
  if (r.isImage) return { containerPath: r.containerPath, hostPath: r.hostPath, source: r.hostPath, create: [], options: [...IMAGE_VOLUME_OPTIONS], field };
  // Option rules first: they need nothing from the host.
  const options = ['rbind'];
  switch (r.propagation) {
    case 'PROPAGATION_PRIVATE':
      options.push('rprivate');
      break;
    case 'PROPAGATION_HOST_TO_CONTAINER':
      options.push('rslave');
      break;
    case 'PROPAGATION_BIDIRECTIONAL':
      options.push('rshared');
      break;
    default:
      throw new InvalidArgumentError(`${field}.propagation ${String(r.propagation)} is not a known propagation mode`);
  }
  if (r.readonly) {
    if (r.recursiveReadOnly) {
      if (!recursiveReadOnlySupported) {
        throw new InvalidArgumentError(`${field}: recursive read-only mounts are not supported by this runtime handler (hostPath ${r.hostPath})`);
      }
      if (r.propagation !== 'PROPAGATION_PRIVATE') {
        throw new InvalidArgumentError(`${field}: recursive read-only mounts need PROPAGATION_PRIVATE, got ${r.propagation} (hostPath ${r.hostPath})`);
      }
      options.push('rro');
    } else options.push('ro');
  } else {
    if (r.recursiveReadOnly) {
      throw new InvalidArgumentError(`${field}: recursiveReadOnly needs readonly (hostPath ${r.hostPath})`);
    }
    options.push('rw');
  }

  const { source, create } = await plannedSource(r.hostPath, field);
  // A source made by mkdir lands on the mount its parent is on, so that is the one checked.
  if (r.propagation === 'PROPAGATION_HOST_TO_CONTAINER') {
    const m = await lookupMount(source);
    if (!m || !(isShared(m) || isSlave(m))) {
      throw new FailedPreconditionError(
        `${field}: hostPath ${r.hostPath} is on mount ${m?.mountPoint ?? '?'} which is not shared or slave, so HOST_TO_CONTAINER propagation cannot work`,
      );
    }
  } else if (r.propagation === 'PROPAGATION_BIDIRECTIONAL') {
    const m = await lookupMount(source);
    if (!m || !isShared(m)) {
      throw new FailedPreconditionError(
        `${field}: hostPath ${r.hostPath} is on mount ${m?.mountPoint ?? '?'} which is not shared, so BIDIRECTIONAL propagation cannot work`,
      );
    }
  }
  return { containerPath: r.containerPath, hostPath: r.hostPath, source, create, options, field };
}

/**
 * Make every missing source directory, or none: when one cannot be made (a read-only or full
 * filesystem, no permission), those this call made are removed again (rmdir only: anything put
 * in them since stays, and so do they).
 */
async function createSources(binds: PlannedBind[]): Promise<void> {
  const made: string[] = [];
  for (const b of binds) {
    for (const d of b.create) {
      try {
        await mkdir(d, { mode: 0o755 });
        made.push(d);
      } catch (err) {
        // Made already for an earlier mount of this container (or by someone else): fine if a directory.
        if (errnoCode(err) === 'EEXIST' && (await stat(d).then((st) => st.isDirectory(), () => false))) continue;
        for (const m of made.reverse()) await rmdir(m).catch(() => undefined);
        throw new FailedPreconditionError(`${b.field}.hostPath ${b.hostPath} does not exist and cannot be created: ${errnoCode(err) ?? err} on mkdir ${d}`, { cause: err });
      }
    }
  }
}

/** A CRI mount's id mappings in OCI form; both uid and gid maps are needed for an idmapped bind. */
function ociIdMappings(list: Mount__Output['uidMappings'], field: string): OciIdMapping[] {
  if (!list || list.length === 0) throw new InvalidArgumentError(`${field}: an id-mapped mount needs both uidMappings and gidMappings`);
  if (list.length > MAX_ID_MAPPINGS) throw new InvalidArgumentError(`${field}: ${list.length} mappings, at most ${MAX_ID_MAPPINGS}`);
  return list.map((m, i) => {
    if (m.length === 0) throw new InvalidArgumentError(`${field}[${i}]: length must not be 0`);
    return { containerID: m.containerId, hostID: m.hostId, size: m.length };
  });
}

function sameOciMappings(a: OciIdMapping[], b: OciIdMapping[]): boolean {
  const key = (l: OciIdMapping[]) => l.map((m) => `${m.containerID}:${m.hostID}:${m.size}`).sort().join(',');
  return key(a) === key(b);
}

/**
 * Every mount is checked (paths, options, sources, propagation) before any host directory is
 * created: a bad mount anywhere in the request leaves the host untouched.
 */
export async function containerMounts(input: MountInput): Promise<MountResult> {
  const idmaps = new Map<string, Pick<OciMount, 'uidMappings' | 'gidMappings'>>();
  const requests: Request[] = [];
  const seen = new Set<string>();
  input.criMounts.forEach((m, i) => {
    const field = `mounts[${i}]`;
    checkCleanPath(m.containerPath, `${field}.containerPath`);
    const image = isImageVolume(m);
    if (image) {
      if (m.hostPath !== '') throw new InvalidArgumentError(`${field}: hostPath "${m.hostPath}" and image "${m.image!.image}" are mutually exclusive`);
    } else {
      checkCleanPath(m.hostPath, `${field}.hostPath`);
      if (m.imageSubPath !== '') throw new InvalidArgumentError(`${field}.imageSubPath is set but ${field}.image is not: a sub path needs an image`);
    }
    if ((m.uidMappings?.length ?? 0) > 0 || (m.gidMappings?.length ?? 0) > 0) {
      // kubelet sends them for every volume of a user-namespaced pod: the runtime idmaps the
      // bind (crib-runtime, native/src/idmap-mount.c), or fails naming it where the filesystem
      // cannot.
      if (!input.podUserns) throw new InvalidArgumentError(`${field}: id-mapped mounts (uidMappings/gidMappings) need a pod with a user namespace`);
      const maps = { uidMappings: ociIdMappings(m.uidMappings, `${field}.uidMappings`), gidMappings: ociIdMappings(m.gidMappings, `${field}.gidMappings`) };
      if (image) {
        // An image volume of such a pod is already mounted through the pod's own mapping
        // (image-volumes.ts); an overlay cannot be idmapped again, so only that mapping can be
        // honoured.
        if (!sameOciMappings(maps.uidMappings, input.podUserns.uidMappings) || !sameOciMappings(maps.gidMappings, input.podUserns.gidMappings)) {
          throw new InvalidArgumentError(`${field}: image volume "${m.image!.image}" can only be mapped with the pod's own uid/gid mappings, and its uidMappings/gidMappings differ`);
        }
      } else {
        idmaps.set(m.containerPath, maps);
      }
    }
    if (seen.has(m.containerPath)) throw new InvalidArgumentError(`${field}: containerPath ${m.containerPath} is mounted twice`);
    seen.add(m.containerPath);
    if (image) {
      const source = input.imageVolumeSources?.get(i);
      // The container service mounts every image volume before building the spec; a caller that
      // did not (the spec builder alone) cannot have one.
      if (source === undefined) throw new InvalidArgumentError(`${field}: image volume "${m.image!.image}" is not mounted (no image volume support here)`);
      requests.push({ containerPath: m.containerPath, hostPath: source, readonly: true, propagation: 'PROPAGATION_PRIVATE', recursiveReadOnly: false, index: i, isImage: true });
      return;
    }
    requests.push({
      containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly, propagation: m.propagation,
      recursiveReadOnly: m.recursiveReadOnly, index: i,
    });
  });

  // Pod-level files, unless kubelet mounts its own at the same path.
  // Looked at side by side (each is a file system round trip), added in this order.
  const extras: [string, string | undefined, boolean][] = [
    ['/etc/hostname', input.hostnamePath, input.readonlyRootfs],
    ['/etc/hosts', input.hostsPath, input.readonlyRootfs],
    ['/etc/resolv.conf', input.resolvPath, input.readonlyRootfs],
    ['/dev/shm', input.ipcMode === 'NODE' ? '/dev/shm' : input.shmPath, false],
  ];
  const present = await Promise.all(extras.map(([containerPath, hostPath]) =>
    hostPath === undefined || hostPath === '' || seen.has(containerPath) ? false : exists(hostPath)));
  extras.forEach(([containerPath, hostPath, readonly], i) => {
    if (!present[i]) return;
    seen.add(containerPath);
    requests.push({ containerPath, hostPath: hostPath!, readonly, propagation: 'PROPAGATION_PRIVATE', recursiveReadOnly: false });
  });

  // Shallow first; stable, so equal depths keep kubelet's order.
  const depth = (p: string): number => p.split('/').length;
  requests.sort((a, b) => depth(a.containerPath) - depth(b.containerPath));

  // Planned side by side (checks only, nothing is made); the first failure in request order is the one reported.
  const planned = await Promise.allSettled(requests.map((r) => planBind(r, input.recursiveReadOnlySupported)));
  const refused = planned.find((p): p is PromiseRejectedResult => p.status === 'rejected');
  if (refused) throw refused.reason;
  const binds = planned.map((p) => (p as PromiseFulfilledResult<PlannedBind>).value);
  await createSources(binds);

  const mounts = defaultMounts(input.privileged).filter(
    (m) => !seen.has(m.destination) && !(seen.has('/dev') && m.destination.startsWith('/dev/')),
  );
  let rootfsPropagation: string | undefined;
  for (const b of binds) {
    if (b.options.includes('rshared')) rootfsPropagation = 'rshared';
    else if (b.options.includes('rslave') && rootfsPropagation !== 'rshared') rootfsPropagation = 'rslave';
    // Resolved again now that a created source exists: the path the runtime binds is the real one.
    const source = b.create.length > 0 ? await realpath(b.hostPath) : b.source;
    mounts.push({ destination: b.containerPath, type: 'bind', source, options: b.options, ...idmaps.get(b.containerPath) });
  }
  return rootfsPropagation === undefined ? { mounts } : { mounts, rootfsPropagation };
}
