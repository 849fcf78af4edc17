// Builders for the CRI messages the spec tests feed in, with the defaults a gRPC server
// receives (proto-loader --defaults): empty lists and strings, enum zero values, null messages.
import type { ContainerConfig__Output } from '../../gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerSecurityContext__Output } from '../../gen/runtime/v1/LinuxContainerSecurityContext.js';
import type { LinuxContainerResources__Output } from '../../gen/runtime/v1/LinuxContainerResources.js';
import type { Mount__Output } from '../../gen/runtime/v1/Mount.js';
import type { NamespaceOption__Output } from '../../gen/runtime/v1/NamespaceOption.js';
import type { PodSandboxConfig__Output } from '../../gen/runtime/v1/PodSandboxConfig.js';
import type { ImageConfig } from '../../image/image-config.js';

export function namespaceOptions(o: Partial<NamespaceOption__Output> = {}): NamespaceOption__Output {
  return { network: 'POD', pid: 'CONTAINER', ipc: 'POD', targetId: '', usernsOptions: null, ...o };
}

/** Kubelet's defaults: pod network and ipc, a pid namespace per container. */
export function securityContext(o: Partial<LinuxContainerSecurityContext__Output> = {}): LinuxContainerSecurityContext__Output {
  return {
    capabilities: null,
    privileged: false,
    namespaceOptions: namespaceOptions(),
    selinuxOptions: null,
    runAsUser: null,
    runAsUsername: '',
    readonlyRootfs: false,
    supplementalGroups: [],
    apparmorProfile: '',
    seccompProfilePath: '',
    noNewPrivs: false,
    runAsGroup: null,
    maskedPaths: [],
    readonlyPaths: [],
    seccomp: null,
    apparmor: null,
    supplementalGroupsPolicy: 'Merge',
    ...o,
  };
}

export function resources(o: Partial<LinuxContainerResources__Output> = {}): LinuxContainerResources__Output {
  return {
    cpuPeriod: '0',
    cpuQuota: '0',
    cpuShares: '0',
    memoryLimitInBytes: '0',
    oomScoreAdj: '0',
    cpusetCpus: '',
    cpusetMems: '',
    hugepageLimits: [],
    unified: {},
    memorySwapLimitInBytes: '0',
    ...o,
  };
}

export function mount(o: Partial<Mount__Output> & { containerPath: string; hostPath: string }): Mount__Output {
  return {
    readonly: false,
    selinuxRelabel: false,
    propagation: 'PROPAGATION_PRIVATE',
    uidMappings: [],
    gidMappings: [],
    recursiveReadOnly: false,
    image: null,
    imageSubPath: '',
    ...o,
  };
}

export function containerConfig(
  o: Partial<ContainerConfig__Output> = {},
  sc: Partial<LinuxContainerSecurityContext__Output> = {},
): ContainerConfig__Output {
  return {
    metadata: { name: 'app', attempt: 0 },
    image: { image: 'docker.io/library/busybox:latest', annotations: {}, userSpecifiedImage: '', runtimeHandler: '', imageRef: '' },
    command: [],
    args: [],
    workingDir: '',
    envs: [],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    logPath: '',
    stdin: false,
    stdinOnce: false,
    tty: false,
    linux: { resources: null, securityContext: securityContext(sc) },
    windows: null,
    CDIDevices: [],
    stopSignal: 'RUNTIME_DEFAULT',
    ...o,
  };
}

export function sandboxConfig(o: Partial<PodSandboxConfig__Output> = {}): PodSandboxConfig__Output {
  return {
    metadata: { name: 'web', uid: 'uid-1234', namespace: 'default', attempt: 0 },
    hostname: 'web-0',
    logDirectory: '',
    dnsConfig: null,
    portMappings: [],
    labels: {},
    annotations: {},
    linux: null,
    windows: null,
    ...o,
  };
}

/** A pod whose security context is privileged (what a privileged container needs). */
export function privilegedSandboxConfig(): PodSandboxConfig__Output {
  return sandboxConfig({
    linux: {
      cgroupParent: '',
      sysctls: {},
      overhead: null,
      resources: null,
      securityContext: {
        namespaceOptions: null, selinuxOptions: null, runAsUser: null, readonlyRootfs: false, supplementalGroups: [],
        privileged: true, seccompProfilePath: '', runAsGroup: null, seccomp: null, apparmor: null, supplementalGroupsPolicy: 'Merge',
      },
    },
  });
}

export function imageConfig(config: NonNullable<ImageConfig['config']> = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] } };
}
