// Container and pod lifecycle events for GetContainerEvents (kubelet's evented PLEG). Subscribers
// get every event after they subscribe; a slow subscriber's queue is bounded and it is dropped, so
// one stuck stream never holds memory hostage.
//
// A pod's own events (made ready, stopped, removed) are container events whose container id is
// the pod's id, as the CRI's other runtimes send them: kubelet deletes a pod from its cache on the
// CONTAINER_DELETED_EVENT of that id, and otherwise holds it until its next full relist.
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import type { PodLifecycleEvent } from '../sandbox/sandbox-service.js';
import { log } from '../log.js';
import { nowNs } from '../time.js';

export type ContainerEventType =
  | 'CONTAINER_CREATED_EVENT'
  | 'CONTAINER_STARTED_EVENT'
  | 'CONTAINER_STOPPED_EVENT'
  | 'CONTAINER_DELETED_EVENT';

export interface ContainerEvent {
  /** The container's id, or the pod's for the pod's own events. */
  containerId: string;
  podId: string;
  type: ContainerEventType;
  createdAt: string;
  /**
   * The pod's record as of a pod's own event: the status sent with it (a removed pod's record
   * is gone by the time its event is sent). Container events look their pod up.
   */
  pod?: SandboxRecord;
}

type Listener = (e: ContainerEvent) => void;

export class ContainerEvents {
  private readonly listeners = new Set<Listener>();

  /**
   * Tells every subscriber. Called in the middle of a lifecycle operation (a pod made ready, a
   * container removed): a subscriber that throws is logged, never let undo or fail that operation.
   */
  emit(e: ContainerEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        log.error({ container: e.containerId, event: e.type, err }, 'a container event subscriber failed');
      }
    }
  }

  /** A pod's own events: made ready is created, then started (containerd sends both). */
  emitPodEvent(kind: PodLifecycleEvent, pod: SandboxRecord): void {
    const types: ContainerEventType[] = kind === 'ready' ? ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT']
      : kind === 'stopped' ? ['CONTAINER_STOPPED_EVENT'] : ['CONTAINER_DELETED_EVENT'];
    for (const type of types) this.emit({ containerId: pod.id, podId: pod.id, type, createdAt: nowNs(), pod });
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
