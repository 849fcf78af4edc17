// ListPodSandbox and ListContainers answer every pod and container of the node, and kubelet
// relists every second. Their entries change only when a record's state does, so each entry's
// protobuf body is encoded once per state (server/direct-encoder.ts) and copied into every later
// listing. protobufjs's fromObject + encode of 110 pods and their containers cost about 5 ms of
// CPU per relist on this project's 2-core machine, which every other call waited behind.
//
// The same goes for the statuses (PodSandboxStatus, ContainerStatus, and the containers' statuses
// PodSandboxStatus lists): kubelet asks for them on every sync of a pod, and a record's status
// changes only with the record. Built and encoded field by field, the status messages were most
// of those calls' own CPU (the daemon runs without an optimising compiler, node-flags.ts). And
// for the images ImageStatus and ListImages answer with (server/image-service.ts), and the
// attributes every stats entry of a container or pod carries (server/stats-rpcs.ts).
//
// A cached entry is keyed by the record object and checked against the record's listed state on
// every use. Records are replaced, not changed, once listed (RecordStore.update and
// ContainerRecords work on a copy); RunPodSandbox changes its own record in place only while it is
// 'creating', and only in fields a creating pod's status does not show (its network, namespaces
// and files), and the check catches a state that changed in place anyway.
import type { Container } from '../gen/runtime/v1/Container.js';
import type { ContainerStatus } from '../gen/runtime/v1/ContainerStatus.js';
import type { PodSandbox } from '../gen/runtime/v1/PodSandbox.js';
import type { PodSandboxStatus } from '../gen/runtime/v1/PodSandboxStatus.js';
import { criState, type ContainerRecord } from '../container/container-record.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { containerMessage, containerStatusMessage, podSandboxMessage, podSandboxState, podSandboxStatusMessage } from './cri-messages.js';
import { messageEncoder } from './cri-proto.js';
import { withEncodedBody } from './direct-encoder.js';

/** The message types a body can be encoded beforehand for (cri-proto.ts messageEncoder). */
type EncodedOnceType = Parameters<typeof messageEncoder>[0];

/**
 * A listing's entry or a status for a record, its body encoded once for the record's current
 * state: `build` makes the message, `stateOf` says which state it shows (a constant for a record
 * that is replaced whenever what it shows changes), `type` names its protobuf message.
 */
export function encodedOncePerState<R extends object, M extends object>(
  type: EncodedOnceType, stateOf: (rec: R) => string, build: (rec: R) => M,
): (rec: R) => M {
  const cache = new WeakMap<R, { state: string; message: M }>();
  let encode: ((value: object) => Buffer) | undefined;
  return (rec) => {
    const state = stateOf(rec);
    const hit = cache.get(rec);
    if (hit?.state === state) return hit.message;
    const message = build(rec);
    withEncodedBody(message, (encode ??= messageEncoder(type))(message));
    cache.set(rec, { state, message });
    return message;
  };
}

/** The pod's ListPodSandbox entry, its body encoded (once for its current state). */
export const listedPodSandbox: (rec: SandboxRecord) => PodSandbox = encodedOncePerState('PodSandbox', podSandboxState, podSandboxMessage);

/** The container's ListContainers entry, its body encoded (once for its current state). */
export const listedContainer: (rec: ContainerRecord) => Container = encodedOncePerState('Container', criState, containerMessage);

/** The pod's status (PodSandboxStatusResponse.status), its body encoded once for its current state. */
export const encodedPodSandboxStatus: (rec: SandboxRecord) => PodSandboxStatus = encodedOncePerState('PodSandboxStatus', podSandboxState, podSandboxStatusMessage);

/** The container's status (ContainerStatus, and its entry in PodSandboxStatus), its body encoded once for its current state. */
export const encodedContainerStatus: (rec: ContainerRecord) => ContainerStatus = encodedOncePerState('ContainerStatus', criState, containerStatusMessage);

/**
 * The statuses of pod `podId`'s containers among `containers`: what PodSandboxStatus lists, and
 * what every container event of the pod carries (kubelet replaces its cached pod status with it).
 */
export function podContainerStatuses(containers: readonly ContainerRecord[], podId: string): ContainerStatus[] {
  return containers.filter((c) => c.podId === podId).map(encodedContainerStatus);
}
