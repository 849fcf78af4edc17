// CRI ContainerConfig + pod + image config → the OCI runtime spec (config.json) that
// crib-runtime, runc or crun runs. Each concern lives in its own module; this one only wires
// them in the order their dependencies need (user → capabilities → seccomp) and states the
// node facts (cgroup controllers, daemon capabilities) they take as parameters.
import { existsSync, readFileSync } from 'node:fs';
import { hostname as nodeHostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import type { ContainerConfig__Output } from '../../gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../../gen/runtime/v1/PodSandboxConfig.js';
import type { ImageConfig } from '../../image/image-config.js';
import { applyCdiDevices } from '../cdi/cdi-edits.js';
import type { ResolvedDevice } from '../cdi/cdi-registry.js';
import { criAnnotations } from './annotations.js';
import type { EtcFiles } from './etc-files.js';
import { containerApparmorProfile } from './apparmor.js';
import { containerCapabilities, currentCapabilities } from './capabilities.js';
import { cgroupsPath } from './cgroups-path.js';
import { containerDevices } from './devices.js';
import { containerEnv } from './env.js';
import { type LsmHost, readLsmHost } from './lsm-host.js';
import { maskedAndReadonlyPaths } from './masked-paths.js';
import { containerMounts } from './mounts.js';
import { containerNamespaces, type PodNamespacePaths } from './namespaces.js';
import type { OciSpec } from './oci-types.js';
import { processArgs, workingDir } from './process-args.js';
import { containerResources, currentOomScoreAdj, oomScoreAdj, swapAccounting } from './resources.js';
import { containerSeccomp } from './seccomp.js';
import { podLevel } from '../../sandbox/mcs-levels.js';
import { isSet, relabelMounts, selinuxLabels, type SelinuxLabels } from './selinux.js';
import { resolveUser } from './user.js';

export const OCI_VERSION = '1.1.0';

export interface SandboxSpecInput {
  id: string;
  config: PodSandboxConfig__Output;
  /** Pinned pod namespaces to join (POD mode); absent ones cannot be joined. */
  netnsPath?: string;
  ipcnsPath?: string;
  utsnsPath?: string;
  pidnsPath?: string;
  /** The pod's pinned user namespace and its maps (usernsOptions POD). */
  userns?: PodNamespacePaths['userns'];
  /** The pod's MCS level from its record (containerSelinuxLabels). */
  selinuxLevel?: string;
  /** The pod's hostname (HOSTNAME env; the uts hostname when the container has its own uts). */
  hostname: string;
  hostsPath?: string;
  resolvPath?: string;
  hostnamePath?: string;
  /** The pod's /dev/shm (a tmpfs on the host); absent → the container gets a private 64 MiB one. */
  shmPath?: string;
  /** The pod's cgroup parent ("" → /crib); a "*.slice" parent selects the systemd form. */
  cgroupParent: string;
}

export interface ContainerSpecInput {
  id: string;
  config: ContainerConfig__Output;
  sandbox: SandboxSpecInput;
  image: { config: ImageConfig; ref: string };
  /** The container rootfs (root.path), where the runtime finds it mounted. */
  rootfsPath: string;
  /**
   * The layers that rootfs is mounted from, top first, where /etc/passwd and /etc/group are
   * read (user.ts): the spec needs no mount, so CreateContainer builds it while its record is
   * written. A plain (or mounted) rootfs directory is its one layer.
   */
  rootfsLayers: readonly string[];
  /** Those layers' /etc/passwd and /etc/group when already at hand (an image's, cached: etc-files.ts). */
  etcFiles?: EtcFiles;
  cgroupVersion: 1 | 2;
  /** What the runtime handler supports; recursive read-only mounts need kernel 5.12+. */
  runtimeFeatures?: { recursiveReadOnly?: boolean };
  /** CDI devices (already resolved from CDI_devices and cdi.k8s.io/ annotations), applied last. */
  cdiDevices?: readonly ResolvedDevice[];
  /** The PID namespace of the container a TARGET-mode container joins (its init's /proc/<pid>/ns/pid). */
  targetPidnsPath?: string;
  /** Host paths of the mounted image volumes, by index in config.mounts (image-volumes.ts). */
  imageVolumeSources?: ReadonlyMap<number, string>;
  /**
   * The labels containerSelinuxLabels gave for this container: CreateContainer needs them before
   * the spec (the rootfs is mounted with the mount label), and the policy check is two selinuxfs
   * writes. Absent: worked out here (on a node without SELinux that is nothing).
   */
  selinuxLabels?: SelinuxLabels;
}

/** Node facts the builder reads; overridable so tests can state them. */
export interface NodeFacts {
  hostCapabilities: string[];
  oomScoreAdjFloor: number;
  swapAvailable: boolean;
  hugetlbAvailable: boolean;
  arch: string;
  /** The node's security modules (AppArmor, SELinux); absent: neither. */
  lsm?: LsmHost;
}

export function readNodeFacts(cgroupVersion: 1 | 2): NodeFacts {
  const v2 = cgroupVersion === 2;
  return {
    hostCapabilities: currentCapabilities(),
    oomScoreAdjFloor: currentOomScoreAdj(),
    swapAvailable: swapAccounting(cgroupVersion),
    hugetlbAvailable: v2 ? /\bhugetlb\b/.test(readControllers()) : existsSync('/sys/fs/cgroup/hugetlb'),
    arch: process.arch,
    lsm: readLsmHost(),
  };
}

function readControllers(): string {
  try {
    return readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
  } catch {
    return '';
  }
}

/**
 * The container's SELinux labels, or undefined on a node without SELinux, where selinuxOptions
 * and selinux_relabel are ignored exactly as containerd ignores them (selinux.ts): no labels, no
 * relabelling. CreateContainer asks before the spec is built (it mounts the rootfs with the mount
 * label) and hands the answer to buildContainerSpec.
 */
export function containerSelinuxLabels(
  config: ContainerConfig__Output,
  sandbox: Pick<SandboxSpecInput, 'id' | 'config' | 'selinuxLevel'>,
  lsm: LsmHost | undefined,
): SelinuxLabels | undefined {
  if (!lsm?.selinux) return undefined;
  const container = config.linux?.securityContext?.selinuxOptions;
  const pod = sandbox.config.linux?.securityContext?.selinuxOptions;
  // A pod given no level of its own (made while the node ran without SELinux) runs at its hash.
  const podOwnLevel = sandbox.selinuxLevel ?? podLevel(sandbox.id);
  const labels = selinuxLabels({ container, pod, podLevel: podOwnLevel, defaults: lsm.selinux.defaults });
  lsm.selinux.checkDefined(labels, isSet(container) || isSet(pod));
  return labels;
}

export async function buildContainerSpec(input: ContainerSpecInput, facts: NodeFacts = readNodeFacts(input.cgroupVersion)): Promise<OciSpec> {
  const { config, sandbox } = input;
  if (!isAbsolute(input.rootfsPath)) throw new InvalidArgumentError(`rootfsPath "${input.rootfsPath}" must be absolute`);
  const sc = config.linux?.securityContext ?? null;
  const privileged = sc?.privileged ?? false;
  const sandboxPrivileged = sandbox.config.linux?.securityContext?.privileged ?? false;
  if (privileged && !sandboxPrivileged) {
    throw new InvalidArgumentError('securityContext.privileged: a privileged container needs a privileged pod sandbox');
  }
  const imageProcess = input.image.config.config;
  const hostname = sandbox.hostname || sandbox.config.hostname || nodeHostname();
  // Pure checks first: a bad request must fail before anything touches the node (mounts.ts
  // creates missing host directories).
  const args = processArgs(config.command ?? [], config.args ?? [], imageProcess);
  const env = containerEnv(imageProcess?.Env, config.envs ?? [], hostname);
  const cwd = workingDir(config.workingDir ?? '', imageProcess);
  const cgroups = cgroupsPath(sandbox.cgroupParent, input.id);
  const resources = containerResources({
    resources: config.linux?.resources,
    cgroupVersion: input.cgroupVersion,
    swapAvailable: facts.swapAvailable,
    hugetlbAvailable: facts.hugetlbAvailable,
  });
  const oomAdj = oomScoreAdj(config.linux?.resources, facts.oomScoreAdjFloor);
  const paths = maskedAndReadonlyPaths(sc, privileged);

  const user = await resolveUser({
    securityContext: sc,
    imageUser: imageProcess?.User,
    rootfsLayers: input.rootfsLayers,
    etcFiles: input.etcFiles,
  });
  const capabilities = containerCapabilities({
    capabilities: sc?.capabilities,
    privileged,
    uid: user.uid,
    hostCapabilities: facts.hostCapabilities,
  });
  const seccomp = await containerSeccomp({ securityContext: sc, privileged, bounding: capabilities.bounding, arch: facts.arch });
  // Before anything is made for the container: a Localhost profile that is not loaded fails here.
  const apparmorProfile = await containerApparmorProfile(sc, privileged, facts.lsm?.apparmor);
  const selinux = input.selinuxLabels ?? containerSelinuxLabels(config, sandbox, facts.lsm);

  const ns = containerNamespaces({
    options: sc?.namespaceOptions,
    pod: {
      netnsPath: sandbox.netnsPath,
      ipcnsPath: sandbox.ipcnsPath,
      utsnsPath: sandbox.utsnsPath,
      pidnsPath: sandbox.pidnsPath,
      userns: sandbox.userns,
    },
    cgroupVersion: input.cgroupVersion,
    privileged,
    targetPidnsPath: input.targetPidnsPath,
  });
  const devices = await containerDevices(config.devices ?? [], privileged);
  const readonlyRootfs = sc?.readonlyRootfs ?? false;
  const mounts = await containerMounts({
    criMounts: config.mounts ?? [],
    privileged,
    readonlyRootfs,
    ipcMode: sc?.namespaceOptions?.ipc ?? 'POD',
    hostsPath: sandbox.hostsPath,
    resolvPath: sandbox.resolvPath,
    hostnamePath: sandbox.hostnamePath,
    shmPath: sandbox.shmPath,
    recursiveReadOnlySupported: input.runtimeFeatures?.recursiveReadOnly ?? false,
    imageVolumeSources: input.imageVolumeSources,
    podUserns: ns.uidMappings && ns.gidMappings ? { uidMappings: ns.uidMappings, gidMappings: ns.gidMappings } : undefined,
  });
  if (selinux) await relabelMounts(config.mounts ?? [], selinux.mountLabel);
  const containerName = config.metadata?.name ?? '';
  const imageName = config.image?.userSpecifiedImage || config.image?.image || input.image.ref;

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: config.tty,
      user,
      args,
      env,
      cwd,
      capabilities,
      noNewPrivileges: sc?.noNewPrivs ?? false,
    },
    root: { path: input.rootfsPath, readonly: readonlyRootfs },
    mounts: mounts.mounts,
    annotations: criAnnotations(sandbox.id, sandbox.config, containerName, imageName),
    linux: {
      namespaces: ns.namespaces,
      resources: { devices: devices.rules, ...resources },
      cgroupsPath: cgroups,
      maskedPaths: paths.maskedPaths,
      readonlyPaths: paths.readonlyPaths,
    },
  };
  if (oomAdj !== undefined) spec.process.oomScoreAdj = oomAdj;
  if (apparmorProfile) spec.process.apparmorProfile = apparmorProfile;
  if (selinux) {
    spec.process.selinuxLabel = selinux.processLabel;
    spec.linux.mountLabel = selinux.mountLabel;
  }
  if (ns.ownUts) spec.hostname = hostname;
  if (ns.uidMappings) spec.linux.uidMappings = ns.uidMappings;
  if (ns.gidMappings) spec.linux.gidMappings = ns.gidMappings;
  if (devices.devices.length > 0) spec.linux.devices = devices.devices;
  if (mounts.rootfsPropagation) spec.linux.rootfsPropagation = mounts.rootfsPropagation;
  if (seccomp) spec.linux.seccomp = seccomp;
  // Last: CDI edits see (and may replace) the container's env, devices and mounts, as in containerd.
  if (input.cdiDevices?.length) await applyCdiDevices(spec, input.cdiDevices);
  return spec;
}
