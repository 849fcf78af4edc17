// The ContainerConfig kubelet would send for one container of a pod (its generateContainerConfig):
// metadata with the attempt (= restart count), the image, command/args/workingDir with $(VAR)
// expanded, env (values and fieldRefs), kubelet's labels and annotations, the log path
// <container>/<attempt>.log inside the pod's log directory, mounts (volumes, the pod's /etc/hosts,
// the termination message file) and the Linux resources and security context.
import type { V1Container } from '@kubernetes/client-node/dist/gen/models/V1Container.js';
import type { V1Pod } from '@kubernetes/client-node/dist/gen/models/V1Pod.js';
import { containerEnv, expandAll, type DataSources, type PodFacts } from './env.js';
import { containerAnnotations, containerLabels } from './labels.js';
import { linuxResources, type QosClass } from './resources.js';
import { namespaceOptions } from './sandbox-config.js';
import type { HostVolume } from './volumes.js';

export const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';
export const DEFAULT_TERMINATION_GRACE_SECONDS = 30;

/** The /proc and /sys paths kubelet asks the runtime to mask or make read-only (procMount Default). */
export const KUBELET_MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const KUBELET_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface ContainerContext {
  pod: V1Pod;
  facts: PodFacts;
  sources: DataSources;
  qos: QosClass;
  memoryCapacity: number;
  volumes: HostVolume[];
  /** The pod's generated hosts file (none for host-network pods). */
  etcHosts?: string;
  /** The host file kubelet would mount at terminationMessagePath for this attempt. */
  terminationLogFile: string;
}

/** kubelet's rule: no_new_privs only when allowPrivilegeEscalation is explicitly false. */
export function securityContext(c: V1Container, pod: V1Pod): Record<string, unknown> {
  const psc = pod.spec!.securityContext;
  const sc = c.securityContext;
  const runAsUser = sc?.runAsUser ?? psc?.runAsUser;
  const runAsGroup = sc?.runAsGroup ?? psc?.runAsGroup;
  const privileged = sc?.privileged === true;
  return {
    namespaceOptions: namespaceOptions(pod),
    ...(runAsUser !== undefined ? { runAsUser: { value: String(runAsUser) } } : {}),
    ...(runAsGroup !== undefined ? { runAsGroup: { value: String(runAsGroup) } } : {}),
    supplementalGroups: (psc?.supplementalGroups ?? []).map(String),
    privileged,
    capabilities: { addCapabilities: sc?.capabilities?.add ?? [], dropCapabilities: sc?.capabilities?.drop ?? [] },
    readonlyRootfs: sc?.readOnlyRootFilesystem === true,
    noNewPrivs: sc?.allowPrivilegeEscalation === false,
    maskedPaths: privileged ? [] : KUBELET_MASKED_PATHS,
    readonlyPaths: privileged ? [] : KUBELET_READONLY_PATHS,
  };
}

/** The user an image runs as, as ImageStatus reports it (uid when numeric, else username). */
export interface ImageUser {
  uid?: { value: string } | null;
  username?: string;
}

/** Whether the container (or, failing that, its pod) asks for runAsNonRoot. */
export function runAsNonRootRequested(c: V1Container, pod: V1Pod): boolean {
  return (c.securityContext?.runAsNonRoot ?? pod.spec!.securityContext?.runAsNonRoot) === true;
}

/**
 * kubelet's runAsNonRoot check (verifyRunAsNonRoot): with runAsNonRoot true, the container must
 * run as a uid other than 0 — its runAsUser, else the image's numeric user. An image user that is a
 * name cannot be checked and is refused, as kubelet refuses it. Returns the reason, or undefined.
 */
export function runAsNonRootViolation(c: V1Container, pod: V1Pod, image: ImageUser): string | undefined {
  if (!runAsNonRootRequested(c, pod)) return undefined;
  const runAsUser = c.securityContext?.runAsUser ?? pod.spec!.securityContext?.runAsUser;
  if (runAsUser !== undefined) {
    return runAsUser === 0 ? `container ${c.name} has runAsNonRoot and runAsUser 0` : undefined;
  }
  if (image.uid != null && image.uid.value !== '') {
    return image.uid.value === '0' ? `container ${c.name} has runAsNonRoot and image ${c.image} will run as root (uid 0)` : undefined;
  }
  if (image.username) {
    return `container ${c.name} has runAsNonRoot and image ${c.image} has the non-numeric user "${image.username}": cannot verify it is not root (set runAsUser)`;
  }
  return `container ${c.name} has runAsNonRoot and image ${c.image} will run as root (it names no user)`;
}

export function terminationMessagePath(c: V1Container): string {
  return c.terminationMessagePath ?? DEFAULT_TERMINATION_MESSAGE_PATH;
}

export function containerConfig(c: V1Container, restartCount: number, ctx: ContainerContext, image: string): Record<string, unknown> {
  const isInit = (ctx.pod.spec!.initContainers ?? []).includes(c);
  const field = `${isInit ? 'initContainers' : 'containers'}[${c.name}]`;
  const env = containerEnv(c.env as never, ctx.facts, ctx.sources, field);
  const byName = new Map(ctx.volumes.map((v) => [v.name, v]));
  const mounts = (c.volumeMounts ?? []).map((m) => {
    const v = byName.get(m.name)!;
    return { containerPath: m.mountPath, hostPath: v.hostPath, readonly: m.readOnly === true || v.readOnly, selinuxRelabel: false, propagation: 'PROPAGATION_PRIVATE' };
  });
  const mounted = new Set(mounts.map((m) => m.containerPath));
  // kubelet's own mounts: the pod's hosts file (unless the container mounts /etc/hosts itself)
  // and a fresh termination-message file per attempt.
  if (ctx.etcHosts && !mounted.has('/etc/hosts')) {
    mounts.push({ containerPath: '/etc/hosts', hostPath: ctx.etcHosts, readonly: false, selinuxRelabel: false, propagation: 'PROPAGATION_PRIVATE' });
  }
  const tmp = terminationMessagePath(c);
  if (!mounted.has(tmp)) mounts.push({ containerPath: tmp, hostPath: ctx.terminationLogFile, readonly: false, selinuxRelabel: false, propagation: 'PROPAGATION_PRIVATE' });
  const grace = ctx.pod.spec!.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS;
  return {
    metadata: { name: c.name, attempt: restartCount },
    image: { image },
    command: expandAll(c.command, env),
    args: expandAll(c.args, env),
    workingDir: c.workingDir ?? '',
    // KeyValue.value is bytes in the CRI proto crib vendors.
    envs: env.map((e) => ({ key: e.key, value: Buffer.from(e.value, 'utf8') })),
    mounts,
    devices: [],
    labels: containerLabels(ctx.facts, c.name),
    annotations: containerAnnotations({
      spec: c, restartCount, terminationMessagePath: tmp, terminationMessagePolicy: c.terminationMessagePolicy ?? 'File',
      terminationGracePeriodSeconds: grace, ports: c.ports as never,
    }),
    logPath: `${c.name}/${restartCount}.log`,
    stdin: c.stdin === true,
    stdinOnce: false,
    tty: c.tty === true,
    linux: {
      resources: linuxResources(c.resources as never, ctx.qos, ctx.memoryCapacity, `${field}.resources`),
      securityContext: securityContext(c, ctx.pod),
    },
  };
}
