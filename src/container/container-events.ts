// Container lifecycle events for GetContainerEvents (kubelet's evented PLEG). Subscribers get
// every event after they subscribe; a slow subscriber's queue is bounded and it is dropped, so
// one stuck stream never holds memory hostage.
export type ContainerEventType =
  | 'CONTAINER_CREATED_EVENT'
  | 'CONTAINER_STARTED_EVENT'
  | 'CONTAINER_STOPPED_EVENT'
  | 'CONTAINER_DELETED_EVENT';

export interface ContainerEvent {
  containerId: string;
  podId: string;
  type: ContainerEventType;
  createdAt: string;
}

type Listener = (e: ContainerEvent) => void;

export class ContainerEvents {
  private readonly listeners = new Set<Listener>();

  emit(e: ContainerEvent): void {
    for (const l of this.listeners) l(e);
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
