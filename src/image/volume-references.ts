// Which containers mount which images as image volumes (KEP-4639). A container's own image may
// be removed while the container runs (its layers stay with the container's writable snapshot),
// but an image volume is reported by reference and digest in ContainerStatus for as long as the
// container exists, so RemoveImage refuses an image one still mounts. Kept in memory only: the
// container records are the truth, and the container service holds them again at start-up.
import { FailedPreconditionError } from '../errors.js';

export class VolumeReferences {
  /** image id → the containers whose image volumes mount it. */
  private readonly holders = new Map<string, Set<string>>();

  hold(imageId: string, containerId: string): void {
    const set = this.holders.get(imageId) ?? new Set<string>();
    set.add(containerId);
    this.holders.set(imageId, set);
  }

  /** Drop every reference `containerId` holds; idempotent. */
  release(containerId: string): void {
    for (const [imageId, set] of this.holders) {
      set.delete(containerId);
      if (set.size === 0) this.holders.delete(imageId);
    }
  }

  holdersOf(imageId: string): string[] {
    return [...(this.holders.get(imageId) ?? [])];
  }

  /** Throws FAILED_PRECONDITION naming a container while any image volume mounts `imageId`. */
  assertUnused(imageId: string, what: string): void {
    const users = this.holdersOf(imageId);
    if (users.length === 0) return;
    const more = users.length > 1 ? ` (and ${users.length - 1} more)` : '';
    throw new FailedPreconditionError(
      `image ${what} (${imageId}) is mounted as an image volume by container ${users[0]}${more}: remove the container first`);
  }
}
