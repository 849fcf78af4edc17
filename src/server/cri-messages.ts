// CRI messages built from crib's records: Container, ContainerStatus, PodSandbox and
// PodSandboxStatus. Several RPC modules answer with the same messages (PodSandboxStatus lists
// its containers' statuses, GetContainerEvents carries the pod's status), so the builders live
// here and the RPC modules never import each other.
import type { Container } from '../gen/runtime/v1/Container.js';
import type { ContainerStatus } from '../gen/runtime/v1/ContainerStatus.js';
import type { NamespaceOption } from '../gen/runtime/v1/NamespaceOption.js';
import type { PodSandbox } from '../gen/runtime/v1/PodSandbox.js';
import type { PodSandboxStatus } from '../gen/runtime/v1/PodSandboxStatus.js';
import { criState, type ContainerRecord } from '../container/container-record.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { reportedStopSignal } from '../container/stop-signal.js';

/**
 * The container's image as asked, resolved to the name it was pulled by. Without ImageSpec's
 * image_ref: that field names the image of an image volume (reportedMounts below); the
 * container's own image id is the message's image_ref and image_id. Sent a third time it made
 * each ListContainers entry a sixth larger (71 of 422 bytes) for every relist kubelet decodes.
 */
function imageSpec(rec: ContainerRecord) {
  return { image: rec.imageName, annotations: rec.config.image?.annotations ?? {}, userSpecifiedImage: rec.config.image?.userSpecifiedImage ?? '', runtimeHandler: rec.config.image?.runtimeHandler ?? '' };
}

export function containerMessage(rec: ContainerRecord): Container {
  return {
    id: rec.id,
    podSandboxId: rec.podId,
    metadata: rec.config.metadata,
    image: imageSpec(rec),
    imageRef: rec.imageId,
    imageId: rec.imageId,
    state: criState(rec),
    createdAt: rec.createdAt,
    labels: rec.config.labels,
    annotations: rec.config.annotations,
  };
}

/**
 * The mounts as asked, each image volume with its image's id (ImageSpec.image_ref, KEP-5365),
 * so kubelet can show which image a volume holds. (Not the host path it is mounted from: the
 * listed-size budget bounds statuses by what the request held, and kubelet does not use it.)
 */
function reportedMounts(rec: ContainerRecord): ContainerRecord['config']['mounts'] {
  const volumes = new Map((rec.imageVolumes ?? []).map((v) => [v.index, v]));
  if (volumes.size === 0) return rec.config.mounts;
  return rec.config.mounts.map((m, i) => {
    const v = volumes.get(i);
    return v && m.image ? { ...m, image: { ...m.image, imageRef: v.imageId } } : m;
  });
}

export function containerStatusMessage(rec: ContainerRecord): ContainerStatus {
  return {
    id: rec.id,
    metadata: rec.config.metadata,
    state: criState(rec),
    createdAt: rec.createdAt,
    startedAt: rec.startedAt ?? '0',
    finishedAt: rec.finishedAt ?? '0',
    exitCode: rec.exitCode ?? 0,
    image: imageSpec(rec),
    imageRef: rec.imageId,
    imageId: rec.imageId,
    reason: rec.reason ?? '',
    message: rec.message ?? '',
    labels: rec.config.labels,
    annotations: rec.config.annotations,
    mounts: reportedMounts(rec),
    logPath: rec.logPath,
    resources: rec.config.linux?.resources ? { linux: rec.config.linux.resources } : null,
    // What the processes really run as, after the image's /etc/passwd and /etc/group and the
    // supplementalGroupsPolicy (kubelet reports it in the pod status).
    user: rec.user
      ? { linux: { uid: String(rec.user.uid), gid: String(rec.user.gid), supplementalGroups: rec.user.additionalGids.map(String) } }
      : null,
    stopSignal: reportedStopSignal(rec.stopSignal) as ContainerStatus['stopSignal'],
  };
}

export function podSandboxState(rec: SandboxRecord): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' {
  return rec.state === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

/**
 * The pod's namespace options as they apply. A pod created without any gives its containers a
 * PID namespace each (as containers without options get), so its status says CONTAINER, not
 * the proto's zero value POD, which would claim a shared PID namespace it does not have.
 */
function namespaceOptionsInEffect(rec: SandboxRecord): NamespaceOption {
  const given = rec.config.linux?.securityContext?.namespaceOptions;
  return given ?? { network: 'POD', pid: 'CONTAINER', ipc: 'POD' };
}

export function podSandboxStatusMessage(rec: SandboxRecord): PodSandboxStatus {
  const net = rec.network;
  return {
    id: rec.id,
    metadata: rec.config.metadata,
    state: podSandboxState(rec),
    createdAt: rec.createdAt,
    // A pod without its own network (or stopped) reports no IP, as kubelet expects.
    network: net && rec.state === 'ready' ? { ip: net.ip, additionalIps: net.ip6 ? [{ ip: net.ip6 }] : [] } : { ip: '', additionalIps: [] },
    linux: { namespaces: { options: namespaceOptionsInEffect(rec) } },
    labels: rec.config.labels,
    annotations: rec.config.annotations,
    runtimeHandler: rec.runtimeHandler,
  };
}

export function podSandboxMessage(rec: SandboxRecord): PodSandbox {
  return {
    id: rec.id,
    metadata: rec.config.metadata,
    state: podSandboxState(rec),
    createdAt: rec.createdAt,
    labels: rec.config.labels,
    annotations: rec.config.annotations,
    runtimeHandler: rec.runtimeHandler,
  };
}
