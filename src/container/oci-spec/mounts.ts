// The container's mounts, in containerd's layout: the kernel filesystems every container gets
// (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup), then the pod files
// (/etc/hostname, /etc/hosts, /etc/resolv.conf, the pod's /dev/shm) and kubelet's CRI mounts,
// shallowest first so a parent is mounted before what is mounted inside it. A CRI mount on a
// path replaces whatever default would have been there (and a CRI /dev replaces all of /dev/*).
import { mkdir, realpath, stat } from 'node:fs/promises';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../../errors.js';
import type { Mount__Output } from '../../gen/runtime/v1/Mount.js';
import type { NamespaceMode__Output } from '../../gen/runtime/v1/NamespaceMode.js';
import { checkCleanPath } from './clean-path.js';
import { isShared, isSlave, lookupMount } from './mount-info.js';
import type { OciMount } from './oci-types.js';

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

type Request = { containerPath: string; hostPath: string; readonly: boolean; propagation: Mount__Output['propagation']; recursiveReadOnly: boolean; index?: number };

export async function containerMounts(input: MountInput): Promise<MountResult> {
  const requests: Request[] = [];
  const seen = new Set<string>();
  input.criMounts.forEach((m, i) => {
    const field = `mounts[${i}]`;
    checkCleanPath(m.containerPath, `${field}.containerPath`);
    checkCleanPath(m.hostPath, `${field}.hostPath`);
    if (m.image && (m.image.image !== '' || m.imageSubPath !== '')) {
      throw new InvalidArgumentError(`${field}: image volume mounts are not supported yet (containerPath ${m.containerPath})`);
    }
    if ((m.uidMappings?.length ?? 0) > 0 || (m.gidMappings?.length ?? 0) > 0) {
      throw new InvalidArgumentError(`${field}: id-mapped mounts need user namespaces, which are not supported yet`);
    }
    if (seen.has(m.containerPath)) throw new InvalidArgumentError(`${field}: containerPath ${m.containerPath} is mounted twice`);
    seen.add(m.containerPath);
    requests.push({ ...m, index: i });
  });

  // Pod-level files, unless kubelet mounts its own at the same path.
  const extra = async (containerPath: string, hostPath: string | undefined, readonly: boolean): Promise<void> => {
    if (hostPath === undefined || hostPath === '' || seen.has(containerPath) || !(await exists(hostPath))) return;
    seen.add(containerPath);
    requests.push({ containerPath, hostPath, readonly, propagation: 'PROPAGATION_PRIVATE', recursiveReadOnly: false });
  };
  await extra('/etc/hostname', input.hostnamePath, input.readonlyRootfs);
  await extra('/etc/hosts', input.hostsPath, input.readonlyRootfs);
  await extra('/etc/resolv.conf', input.resolvPath, input.readonlyRootfs);
  await extra('/dev/shm', input.ipcMode === 'NODE' ? '/dev/shm' : input.shmPath, false);

  // Shallow first; stable, so equal depths keep kubelet's order.
  const depth = (p: string): number => p.split('/').length;
  requests.sort((a, b) => depth(a.containerPath) - depth(b.containerPath));

  const mounts = defaultMounts(input.privileged).filter(
    (m) => !seen.has(m.destination) && !(seen.has('/dev') && m.destination.startsWith('/dev/')),
  );
  let rootfsPropagation: string | undefined;
  for (const r of requests) {
    const field = r.index === undefined ? r.containerPath : `mounts[${r.index}]`;
    let source = r.hostPath;
    // containerd creates a missing host directory rather than failing the container.
    if (!(await exists(source))) {
      try {
        await mkdir(source, { recursive: true, mode: 0o755 });
      } catch (err) {
        throw new FailedPreconditionError(`${field}.hostPath ${source} does not exist and cannot be created: ${errnoCode(err) ?? err}`, { cause: err });
      }
    }
    source = await realpath(source);

    const options = ['rbind'];
    switch (r.propagation) {
      case 'PROPAGATION_PRIVATE':
        options.push('rprivate');
        break;
      case 'PROPAGATION_HOST_TO_CONTAINER': {
        const m = await lookupMount(source);
        if (!m || !(isShared(m) || isSlave(m))) {
          throw new FailedPreconditionError(
            `${field}: hostPath ${r.hostPath} is on mount ${m?.mountPoint ?? '?'} which is not shared or slave, so HOST_TO_CONTAINER propagation cannot work`,
          );
        }
        options.push('rslave');
        if (rootfsPropagation !== 'rshared') rootfsPropagation = 'rslave';
        break;
      }
      case 'PROPAGATION_BIDIRECTIONAL': {
        const m = await lookupMount(source);
        if (!m || !isShared(m)) {
          throw new FailedPreconditionError(
            `${field}: hostPath ${r.hostPath} is on mount ${m?.mountPoint ?? '?'} which is not shared, so BIDIRECTIONAL propagation cannot work`,
          );
        }
        options.push('rshared');
        rootfsPropagation = 'rshared';
        break;
      }
      default:
        throw new InvalidArgumentError(`${field}.propagation ${String(r.propagation)} is not a known propagation mode`);
    }
    if (r.readonly) {
      if (r.recursiveReadOnly) {
        if (!input.recursiveReadOnlySupported) {
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
    mounts.push({ destination: r.containerPath, type: 'bind', source, options });
  }
  return rootfsPropagation === undefined ? { mounts } : { mounts, rootfsPropagation };
}
