// kubelet asks about what a call changed as soon as that call answers: PodSandboxStatus right
// after RunPodSandbox, ContainerStatus after StartContainer, its relist (ListPodSandbox,
// ListContainers) after any of them or a container's exit, ImageStatus after PullImage. The first
// of those calls found the new state's status and listing entry not yet encoded
// (listed-messages.ts encodes each once per state), and building and encoding them was most of
// its own CPU. They are now encoded ahead of those calls; the work is the same, only when it is
// done changes, and a state no one asks about again is not encoded twice.
// - The status, which comes first, is encoded before the call's answer is written (in a microtask
//   queued where the change is made, so it runs before the call's own continuation sends the
//   answer). Encoding it after the answer (the next turn of the event loop) left it to chance:
//   the answer wakes the client, which on a busy machine often preempts the daemon on its CPU and
//   sends the status call before that turn comes, and the status call then waited for the encoding
//   (bench/status-after-work.ts). A lifecycle call (milliseconds) pays the encoding (tens of
//   microseconds) instead.
// - The listing entry, asked for by the relist up to a second later, is encoded after the answer,
//   in the next turn of the event loop.
import type { ContainerEvent, ContainerEvents } from '../container/container-events.js';
import type { ContainerRecord } from '../container/container-record.js';
import { log } from '../log.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { encodedContainerStatus, encodedPodSandboxStatus, listedContainer, listedPodSandbox } from './listed-messages.js';

/** Runs `encode`, logging a failure: the call that comes next builds it again, and fails or not
 * on its own. */
function encodeAhead(encode: () => void): void {
  try {
    encode();
  } catch (err) {
    log.debug({ err }, 'encoding a status ahead of its call failed');
  }
}

/** Runs `encode` before the current call's answer is written (a microtask queued now runs before
 * the continuation of the call that is making the change). */
export function encodeBeforeAnswer(encode: () => void): void {
  queueMicrotask(() => encodeAhead(encode));
}

/** Runs `encode` once the current call's answer is on its way: in the next turn of the event loop. */
export function encodeAfterAnswer(encode: () => void): void {
  setImmediate(() => encodeAhead(encode));
}

/** Where the records an event names are looked up when its encoding runs (they may be gone). */
export interface PrewarmLookups {
  pod(id: string): SandboxRecord | undefined;
  container(id: string): ContainerRecord | undefined;
}

/**
 * Encodes the status of each pod and container a lifecycle event names before the answer of the
 * call that made the change, and its listing entry after it (the records as they are then).
 * Returns the unsubscribe.
 */
export function prewarmOnLifecycleEvents(events: ContainerEvents, lookups: PrewarmLookups): () => void {
  return events.subscribe((e: ContainerEvent) => {
    if (e.type === 'CONTAINER_DELETED_EVENT') return;
    // Looked up when the encoding runs: the record as it is then, or none if it is gone.
    const encoding = (pod: (rec: SandboxRecord) => unknown, container: (rec: ContainerRecord) => unknown) => () => {
      if (e.containerId === e.podId) {
        const rec = lookups.pod(e.podId);
        if (rec) pod(rec);
      } else {
        const rec = lookups.container(e.containerId);
        if (rec) container(rec);
      }
    };
    encodeBeforeAnswer(encoding(encodedPodSandboxStatus, encodedContainerStatus));
    encodeAfterAnswer(encoding(listedPodSandbox, listedContainer));
  });
}
