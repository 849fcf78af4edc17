// The overall deadline of a blob download: once a grace period has passed, the download must
// have averaged at least a minimum rate since it started. The progress timeout alone lets a
// registry hold a download (and its pull slot, and kubelet's PullImage) for as long as it likes
// by sending one byte just before each timeout; a floor on the average makes that trickle fail
// at the end of the grace period, and bounds any download of S bytes by max(grace, S / rate)
// while never failing a link that keeps up the rate, however large the blob.
//
// Time the consumer spends not reading (backpressure from the disk or the unpacker) is paused
// out, as the progress timeout does: a slow node is not a slow registry.
//
// One timer, set for the moment the average could first drop under the floor given the bytes
// counted so far (a timer per chunk would cost real throughput): on a fast link it lies far
// ahead and is re-armed rarely.
import { performance } from 'node:perf_hooks';

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ThroughputFloorOptions {
  /** Minimum average, bytes per second. */
  minBytesPerSecond: number;
  /** The average is not checked before this much (active) time has passed. */
  graceMs: number;
  /** Called once, when the average has fallen under the floor. */
  onTooSlow(receivedBytes: number, activeMs: number): void;
}

export class ThroughputFloor {
  private received = 0;
  /** Active time accumulated before the current run (ms). */
  private activeBefore = 0;
  /** performance.now() when the current run began; undefined while paused or stopped. */
  private runningSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: ThroughputFloorOptions) {
    if (!(opts.minBytesPerSecond > 0) || !(opts.graceMs >= 0)) {
      throw new RangeError(`throughput floor: rate ${opts.minBytesPerSecond} B/s and grace ${opts.graceMs} ms must be positive`);
    }
    this.resume();
  }

  /** Bytes that arrived from the registry. */
  add(bytes: number): void {
    this.received += bytes;
  }

  get receivedBytes(): number {
    return this.received;
  }

  /** Active time so far (ms). */
  activeMs(): number {
    return this.activeBefore + (this.runningSince === undefined ? 0 : performance.now() - this.runningSince);
  }

  /** The consumer stopped reading: stop the clock. */
  pause(): void {
    if (this.runningSince === undefined) return;
    this.activeBefore = this.activeMs();
    this.runningSince = undefined;
    clearTimeout(this.timer);
  }

  /** The consumer reads again (or the download starts): run the clock. */
  resume(): void {
    if (this.stopped || this.runningSince !== undefined) return;
    this.runningSince = performance.now();
    this.arm();
  }

  /** The download ended, one way or the other. */
  stop(): void {
    this.stopped = true;
    this.pause();
  }

  private arm(): void {
    const { minBytesPerSecond, graceMs } = this.opts;
    // The first moment the average can be under the floor: when rate × time passes the bytes.
    const due = Math.max(graceMs, (this.received * 1000) / minBytesPerSecond);
    // Node runs a timer set past 2^31-1 ms after 1 ms instead: check at the cap and re-arm then.
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(due - this.activeMs())));
    this.timer = setTimeout(() => this.check(), delay);
  }

  private check(): void {
    if (this.stopped || this.runningSince === undefined) return;
    const active = this.activeMs();
    if (active >= this.opts.graceMs && this.received * 1000 < this.opts.minBytesPerSecond * active) {
      this.stop();
      this.opts.onTooSlow(this.received, active);
      return;
    }
    this.arm();
  }
}
