// kubelet asks about what a call changed as soon as that call answers: PodSandboxStatus right
// after RunPodSandbox, ContainerStatus after StartContainer, its relist (ListPodSandbox,
// ListContainers) after any of them or a container's exit, ImageStatus after PullImage. The first
// of those calls found the new state's status and listing entry not yet encoded
// (listed-messages.ts encodes each once per state), and building and encoding them was most of
// its own CPU. They are now encoded in the next turn of the event loop after the change: the
// call's answer is written first (the connection flushes in a microtask), and the encoding runs
// while the client reads that answer and sends its next call. The work is the same; only when it
// is done changes, and a state no one asks about again is not encoded twice.
import type { ContainerEvent, ContainerEvents } from '../container/container-events.js';
import type { ContainerRecord } from '../container/container-record.js';
import { log } from '../log.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { encodedContainerStatus, encodedPodSandboxStatus, listedContainer, listedPodSandbox } from './listed-messages.js';

/** Runs `encode` once the current call's answer is on its way; a failure is logged, never thrown. */
export function encodeAfterAnswer(encode: () => void): void {
  setImmediate(() => {
    try {
      encode();
    } catch (err) {
      // The status call that comes next builds it again, and fails or not on its own.
      log.debug({ err }, 'encoding a status ahead of its call failed');
    }
  });
}

/** Where the records an event names are looked up when its encoding runs (they may be gone). */
export interface PrewarmLookups {
  pod(id: string): SandboxRecord | undefined;
  container(id: string): ContainerRecord | undefined;
}

/**
 * Encodes the status and listing entry of each pod and container a lifecycle event names, after
 * the answer of the call that made it (the records as they are then). Returns the unsubscribe.
 */
export function prewarmOnLifecycleEvents(events: ContainerEvents, lookups: PrewarmLookups): () => void {
  return events.subscribe((e: ContainerEvent) => {
    if (e.type === 'CONTAINER_DELETED_EVENT') return;
    encodeAfterAnswer(() => {
      if (e.containerId === e.podId) {
        const pod = lookups.pod(e.podId);
        if (!pod) return;
        encodedPodSandboxStatus(pod);
        listedPodSandbox(pod);
        return;
      }
      const container = lookups.container(e.containerId);
      if (!container) return;
      encodedContainerStatus(container);
      listedContainer(container);
    });
  });
}
