// The CRI's list filters: an id prefix, a pod id prefix, a state and an exact-match label
// selector, every one optional. Shared by the List/Stream calls and their stats twins.

/** CRI label selectors are exact matches on every given key. */
export function matchesLabels(labels: Record<string, string> | undefined, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

export interface CriListFilter {
  id?: string;
  podSandboxId?: string;
  state?: { state?: string } | null;
  labelSelector?: Record<string, string>;
}

/** Whether an object (its id, pod id, CRI state and labels) passes a CRI list filter. */
export function matchesFilter(
  obj: { id: string; podId?: string; state: string; labels: Record<string, string> | undefined },
  filter: CriListFilter | null | undefined,
): boolean {
  return (
    (!filter?.id || obj.id.startsWith(filter.id)) &&
    (!filter?.podSandboxId || (obj.podId ?? '').startsWith(filter.podSandboxId)) &&
    (!filter?.state || obj.state === filter.state.state) &&
    matchesLabels(obj.labels, filter?.labelSelector)
  );
}
