// ListPodSandbox and ListContainers answer every pod and container of the node, and kubelet
// relists every second. Their entries change only when a record's state does, so each entry's
// protobuf body is encoded once per state (server/direct-encoder.ts) and copied into every later
// listing. protobufjs's fromObject + encode of 110 pods and their containers cost about 5 ms of
// CPU per relist on this project's 2-core machine, which every other call waited behind.
//
// A cached entry is keyed by the record object and checked against the record's listed state on
// every use. Records are replaced, not changed, once listed (RecordStore.update works on a copy);
// RunPodSandbox changes its own record in place only while it is 'creating', which no listing
// shows, and the check catches a state that changed in place anyway.
import type { Container } from '../gen/runtime/v1/Container.js';
import type { PodSandbox } from '../gen/runtime/v1/PodSandbox.js';
import { criState, type ContainerRecord } from '../container/container-record.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { containerMessage, podSandboxMessage, podSandboxState } from './cri-messages.js';
import { messageEncoder } from './cri-proto.js';
import { withEncodedBody } from './direct-encoder.js';

const pods = new WeakMap<SandboxRecord, { state: string; message: PodSandbox }>();
const containers = new WeakMap<ContainerRecord, { state: string; message: Container }>();
let encodePod: ((value: object) => Buffer) | undefined;
let encodeContainer: ((value: object) => Buffer) | undefined;

/** The pod's ListPodSandbox entry, its body encoded (once for its current state). */
export function listedPodSandbox(rec: SandboxRecord): PodSandbox {
  const state = podSandboxState(rec);
  const hit = pods.get(rec);
  if (hit?.state === state) return hit.message;
  const message = podSandboxMessage(rec);
  withEncodedBody(message, (encodePod ??= messageEncoder('PodSandbox'))(message));
  pods.set(rec, { state, message });
  return message;
}

/** The container's ListContainers entry, its body encoded (once for its current state). */
export function listedContainer(rec: ContainerRecord): Container {
  const state = criState(rec);
  const hit = containers.get(rec);
  if (hit?.state === state) return hit.message;
  const message = containerMessage(rec);
  withEncodedBody(message, (encodeContainer ??= messageEncoder('Container'))(message));
  containers.set(rec, { state, message });
  return message;
}
