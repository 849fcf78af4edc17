// What a pull in flight has done so far, per layer, for `crib pull`'s progress display (through
// the admin service's StreamPull) and the pull metrics. The CRI's PullImage is unary, so this is
// the only window into a long pull. Readers take snapshots; nothing here blocks the pull.

export type LayerState = 'waiting' | 'downloading' | 'unpacking' | 'done' | 'present';

export interface LayerProgress {
  digest: string;
  /** Compressed size from the manifest. */
  size: number;
  /** Bytes downloaded so far (0 for a layer already on the node). */
  received: number;
  state: LayerState;
}

export interface PullSnapshot {
  image: string;
  /** "resolving" until the manifest is read, then "pulling", then "done" or "failed". */
  phase: 'resolving' | 'pulling' | 'done' | 'failed';
  layers: LayerProgress[];
  /** Milliseconds since the pull started. */
  elapsedMs: number;
}

export class PullProgress {
  readonly startedAt = Date.now();
  /** How long the pull waited for its flush of the layers to disk (syncfs), once it is over. */
  flushMs: number | undefined;
  private phase: PullSnapshot['phase'] = 'resolving';
  private layers: LayerProgress[] = [];

  constructor(readonly image: string) {}

  /** The manifest is resolved: these are the layers to fetch. */
  resolved(layers: { digest: string; size: number }[]): void {
    this.layers = layers.map((l) => ({ digest: l.digest, size: l.size, received: 0, state: 'waiting' }));
    this.phase = 'pulling';
  }

  layerBytes(i: number, received: number): void {
    const l = this.layers[i];
    if (!l) return;
    l.received = received;
    l.state = 'downloading';
  }

  layerState(i: number, state: LayerState): void {
    const l = this.layers[i];
    if (l) l.state = state;
  }

  finished(ok: boolean): void {
    this.phase = ok ? 'done' : 'failed';
    if (ok) for (const l of this.layers) if (l.state !== 'present') l.state = 'done';
  }

  /** Bytes this pull downloaded (layers already on the node count nothing). */
  get receivedBytes(): number {
    return this.layers.reduce((n, l) => n + l.received, 0);
  }

  snapshot(): PullSnapshot {
    return { image: this.image, phase: this.phase, layers: this.layers.map((l) => ({ ...l })), elapsedMs: Date.now() - this.startedAt };
  }
}
