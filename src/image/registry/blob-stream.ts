// A blob download that survives flaky networks. Connection resets and truncated bodies are
// resumed from the byte reached with `Range: bytes=N-` (or, when the server ignores Range, by
// downloading again and skipping what was already delivered), up to a retry budget. A body that
// stops moving for progressTimeoutMs is a stalled pull and fails with DeadlineExceeded; time the
// consumer spends not reading (backpressure) is not counted as a stall. A body that keeps moving
// but too slowly to average pull_min_rate once pull_min_rate_grace has passed fails with
// DeadlineExceeded as well (throughput-floor.ts): the progress timeout alone is beaten by a
// registry sending one byte just before each timeout.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatByteSize } from '../../config/byte-size.js';
import { eachChunk } from '../../sys/each-chunk.js';
import { TurnBudget } from '../../sys/turn-budget.js';
import { CribError, DeadlineExceededError, UnavailableError } from '../../errors.js';
import { log } from '../../log.js';
import { describeNetworkError, isAbortError } from './registry-errors.js';
import { ThroughputFloor } from './throughput-floor.js';
import { BODY_CUT_SHORT } from './http-failures.js';

/** A response body to read from, and how many leading bytes of it to drop. */
export interface OpenedBody {
  body: Readable;
  skip: number;
}

export interface BlobStreamOptions {
  digest: string;
  /** How messages name the blob: "config sha256:…", "layer sha256:…". */
  what: string;
  /** Expected size, when known: a body ending short of it is resumed, not accepted. */
  size?: number;
  /** Bytes already delivered before this stream's first byte (a resumed ingest). */
  offset: number;
  retries: number;
  backoffMs: number;
  progressTimeoutMs: number;
  /** Minimum average rate of the whole download, bytes per second (image.pull_min_rate). */
  minBytesPerSecond: number;
  /** How long the download runs before its average is held to minBytesPerSecond. */
  minRateGraceMs: number;
  signal?: AbortSignal;
  /** Open the blob again from `offset` (with Range), throwing a CribError when it cannot;
   * `signal` is aborted when this stream ends first. */
  reopen(offset: number, signal: AbortSignal): Promise<OpenedBody>;
}

class StallError extends Error {}

/**
 * One share of each turn of the event loop for every download together: a body stops there and
 * goes on in the next turn, so timers and other calls are served between bursts of reads.
 */
const downloadTurns = new TurnBudget(2);

/** "1.5s", "300s": a timeout as messages give it. */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
}

export class ResumableBlobStream extends Readable {
  private current: Readable | undefined;
  private delivered: number;
  private wantMore: (() => void) | undefined;
  private stopped = false;
  private readonly floor: ThroughputFloor;
  /** Aborts a resume's back-off and request when the stream ends (destroyed, too slow) first. */
  private readonly ended = new AbortController();
  private readonly signal: AbortSignal;
  /** How many times the download was resumed after a failure (for callers' metrics). */
  resumes = 0;

  constructor(first: OpenedBody, private readonly opts: BlobStreamOptions) {
    super({ highWaterMark: 1 << 20 });
    this.delivered = opts.offset;
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.ended.signal]) : this.ended.signal;
    this.floor = new ThroughputFloor({
      minBytesPerSecond: opts.minBytesPerSecond,
      graceMs: opts.minRateGraceMs,
      onTooSlow: (received, activeMs) => this.destroy(this.tooSlow(received, activeMs)),
    });
    void this.pump(first);
  }

  override _read(): void {
    const wake = this.wantMore;
    this.wantMore = undefined;
    wake?.();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.stopped = true;
    this.floor.stop();
    this.ended.abort();
    this.current?.destroy();
    this._read();
    callback(err);
  }

  private async pump(first: OpenedBody): Promise<void> {
    let opened: OpenedBody = first;
    for (;;) {
      try {
        await this.copy(opened);
        if (this.stopped) return;
        const { size } = this.opts;
        if (size !== undefined && this.delivered < size) {
          throw Object.assign(new Error(`body ended after ${this.delivered} of ${size} bytes`), { code: BODY_CUT_SHORT });
        }
        this.floor.stop();
        this.push(null);
        return;
      } catch (err) {
        if (this.stopped) return;
        const failure = this.classify(err);
        if (failure) {
          this.destroy(failure);
          return;
        }
        this.resumes++;
        log.warn({ digest: this.opts.digest, offset: this.delivered, resume: this.resumes, err: describeNetworkError(err) },
          'blob download interrupted; resuming');
        try {
          await sleep(this.opts.backoffMs * 2 ** (this.resumes - 1), undefined, { signal: this.signal });
          opened = await this.opts.reopen(this.delivered, this.signal);
        } catch (reopenErr) {
          if (!this.stopped) this.destroy(reopenErr instanceof Error ? reopenErr : new Error(String(reopenErr)));
          return;
        }
        if (this.stopped) {
          opened.body.destroy();
          return;
        }
      }
    }
  }

  private tooSlow(received: number, activeMs: number): DeadlineExceededError {
    const { what, minBytesPerSecond, minRateGraceMs, size } = this.opts;
    return new DeadlineExceededError(
      `pull of ${what} too slow: ${received} bytes received in ${formatSeconds(activeMs)}` +
      `${size !== undefined ? ` (${this.delivered} of ${size} bytes delivered)` : ''}, under the average of ` +
      `${formatByteSize(minBytesPerSecond)}/s required after the first ${formatSeconds(minRateGraceMs)}` +
      ' (if the link is this slow, lower image.pull_min_rate or raise image.pull_min_rate_grace)');
  }

  /** The error that ends the stream, or undefined when the failure is worth a resume. */
  private classify(err: unknown): Error | undefined {
    if (err instanceof StallError) {
      return new DeadlineExceededError(
        `pull of ${this.opts.what} stalled: no bytes for ${formatSeconds(this.opts.progressTimeoutMs)} after ${this.delivered} bytes` +
        ' (the registry or the network stopped sending; raise image.pull_progress_timeout if the link is this slow)');
    }
    if (isAbortError(err, this.opts.signal)) return err instanceof Error ? err : new Error(String(err));
    if (err instanceof CribError) return err;
    if (this.resumes >= this.opts.retries) {
      return new UnavailableError(`pull of ${this.opts.what} failed after ${this.resumes + 1} attempts at ${this.delivered} bytes: ${describeNetworkError(err)}`);
    }
    return undefined;
  }

  /** Copy one response body into this stream, watching for stalls. */
  private async copy({ body, skip }: OpenedBody): Promise<void> {
    this.current = body;
    let toSkip = skip;
    // One watchdog per body, re-armed as bytes arrive (a timer per chunk costs real throughput);
    // it stands down while the consumer applies backpressure.
    let waitingForConsumer = false;
    const watchdog = setTimeout(() => {
      if (!waitingForConsumer) body.destroy(new StallError());
    }, this.opts.progressTimeoutMs);
    const consumerReady = async (): Promise<void> => {
      waitingForConsumer = true;
      this.floor.pause();
      await new Promise<void>((resolve) => (this.wantMore = resolve));
      this.floor.resume();
      waitingForConsumer = false;
      watchdog.refresh();
    };
    try {
      // Each chunk as the body pushed it (a `for await` read concatenates what piled up while
      // the consumer held us back).
      await eachChunk(body, (received) => {
        if (this.stopped) return undefined;
        watchdog.refresh();
        let chunk = received;
        // Bytes skipped after a restart count too: the registry did send them.
        this.floor.add(chunk.length);
        if (toSkip > 0) {
          const drop = Math.min(toSkip, chunk.length);
          toSkip -= drop;
          chunk = chunk.subarray(drop);
          if (chunk.length === 0) return undefined;
        }
        this.delivered += chunk.length;
        return this.push(chunk) ? downloadTurns.spend() : consumerReady();
      });
    } finally {
      clearTimeout(watchdog);
      if (this.current === body) this.current = undefined;
      body.destroy();
    }
  }
}
