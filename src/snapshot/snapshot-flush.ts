// A pull's flush of the layers it commits. Snapshot files are written unflushed (one syncfs per
// pull costs far less than an fsync per file), and a pull flushes the filesystem before its image
// record points at them: part of it ahead, while its last layers still unpack, the rest at its end.
//
// The flush goes through a descriptor the pull opens before it writes anything. Linux reports a
// writeback error on a filesystem to each descriptor's syncfs once, counting from the error state
// it sampled at open (errseq), and a descriptor opened after some other syncfs took the error is
// told nothing. A flush that opened the dir only when it ran would pass over the pull's lost
// pages whenever another pull, or a container calling syncfs on the same filesystem, met the
// error first: the image would be recorded whole, with files that read back empty.
//
// For the same reason only the pull that wrote a layer can vouch for it: its descriptor is the
// one opened before the layer's writes. A pull that reuses a layer another pull committed and has
// not yet flushed waits for that pull's flush to vouch for it, or to report it lost.
import { open, type FileHandle } from 'node:fs/promises';
import { fsError } from '../errors.js';
import { log } from '../log.js';
import { syncFilesystem } from '../sys/libc.js';

/** syncfs through `fd`, an open descriptor of `dir` (named in errors). */
export type Syncfs = (fd: number, dir: string) => Promise<void>;

/**
 * How many layers a snapshotter committed, and how many of them a finished flush covers: a pull
 * that committed nothing, with every earlier commit flushed, has nothing to flush (a re-pull of a
 * present image, at every container start under imagePullPolicy Always).
 */
export class FlushLedger {
  /** It starts at one: a restarted daemon cannot tell whether its predecessor flushed its last commits. */
  private commitCount = 1;
  private flushedCount = 0;

  get commits(): number {
    return this.commitCount;
  }

  get flushed(): number {
    return this.flushedCount;
  }

  committed(): void {
    this.commitCount++;
  }

  /** A flush that began when `commits` layers were committed finished. */
  flushedThrough(commits: number): void {
    this.flushedCount = Math.max(this.flushedCount, commits);
  }
}

/** What a pull's flush tells the snapshotter about the layers it committed, and asks of others'. */
export interface LayerVouching {
  /** These layers are on disk: flushed through a descriptor opened before they were written. */
  vouched(chainIds: string[]): void;
  /** A flush that covered these layers failed: they may have lost pages. */
  lost(chainIds: string[]): void;
  /**
   * Settles once the pull that committed `chainId` vouched for it (at once for a layer vouched
   * for already, or one an earlier daemon committed); rejects if it was lost.
   */
  vouchedFor(chainId: string): Promise<void>;
}

export class SnapshotFlush {
  /** The layers this pull committed and its flushes have not yet vouched for, with their commit counts. */
  private readonly mine: { chainId: string; commit: number }[] = [];
  private ahead: Promise<void> | undefined;
  /** Why a flush ahead failed, until flush() reports it. */
  private aheadFailure: { err: unknown } | undefined;
  /** flush() or close() began: no flush ahead starts any more. */
  private ending = false;
  /**
   * A syncfs through this descriptor failed. It told that error once: a later syncfs through it
   * passes over the pages lost then, so it can vouch for no layer any more.
   */
  private failed = false;
  private closed = false;

  private constructor(private readonly fh: FileHandle, private readonly dir: string,
    private readonly ledger: FlushLedger, private readonly vouching: LayerVouching, private readonly syncfs: Syncfs) {}

  /** Open the flush of `dir`'s filesystem before the pull's first write into it. */
  static async open(dir: string, ledger: FlushLedger, vouching: LayerVouching,
    syncfs: Syncfs = syncfsNaming): Promise<SnapshotFlush> {
    let fh: FileHandle;
    try {
      fh = await open(dir, 'r');
    } catch (err) {
      throw fsError(err, dir, 'open');
    }
    return new SnapshotFlush(fh, dir, ledger, vouching, syncfs);
  }

  /**
   * The snapshotter committed `chainId` for this pull: its flush is the one to vouch for it. Told
   * in the same tick as the commit, so no other pull sees the layer before it is owned. Its flush
   * starts at once, in the background: the disk works while the pull's last layers still unpack,
   * and a pull that reuses the layer waits only that long.
   */
  adopt(chainId: string): void {
    if (this.failed) {
      this.vouching.lost([chainId]);
      return;
    }
    this.mine.push({ chainId, commit: this.ledger.commits });
    this.flushAhead();
  }

  /**
   * Flush the layers committed so far in the background, one such flush at a time, the next
   * starting as one ends while a layer waits for it. A failure is kept for flush(), which throws
   * it: its descriptor has taken that error, and a later syncfs through it would not report it.
   */
  flushAhead(): void {
    if (this.ahead || this.ending || this.aheadFailure || !this.pending()) return;
    this.ahead = this.run()
      .catch((err: unknown) => {
        this.aheadFailure ??= { err };
        log.warn({ err, dir: this.dir }, 'background flush of the snapshots failed; the pull that started it fails with it');
      })
      .finally(() => {
        this.ahead = undefined;
        if (this.mine.length > 0) this.flushAhead();
      });
  }

  /** Throw the error a flush ahead met, if one did: a pull stops committing on lost layers. */
  throwIfFailed(): void {
    if (this.aheadFailure) throw this.aheadFailure.err;
  }

  /**
   * Flush what is left (after any flush ahead), or throw the write error one of them met since
   * this flush was opened: then the layers may not be on disk, and no record may point at them.
   * Then wait until each of `uses` (the chain IDs the image needs) is vouched for by the pull
   * that committed it, or throw if one was lost.
   */
  async flush(uses: readonly string[] = []): Promise<void> {
    this.ending = true;
    // The kernel tells a write error to one syncfs of a descriptor: one a flush ahead took is this
    // pull's, so no flush of its own may run before every flush ahead has ended.
    while (this.ahead) await this.ahead;
    const failure = this.aheadFailure;
    this.aheadFailure = undefined;
    if (failure) throw failure.err;
    await this.run();
    await Promise.all(uses.map((c) => this.vouching.vouchedFor(c)));
  }

  /**
   * Close the descriptor, once no flush ahead can still use its number. Layers this pull
   * committed and did not flush (it failed after their commit) are flushed first, vouched for or
   * reported lost: another pull may be waiting on them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ending = true;
    while (this.ahead) await this.ahead;
    if (this.mine.length > 0) await this.run().catch(() => undefined);
    await this.fh.close();
  }

  /** A layer this pull has not vouched for, or one (an earlier daemon's, another pull's) no finished flush covers. */
  private pending(): boolean {
    return this.mine.length > 0 || this.ledger.commits > this.ledger.flushed;
  }

  private async run(): Promise<void> {
    if (!this.pending()) return;
    const upTo = this.ledger.commits;
    try {
      await this.syncfs(this.fh.fd, this.dir);
    } catch (err) {
      // Which pages were lost it cannot tell: all of its layers may have been.
      this.failed = true;
      this.vouching.lost(this.mine.splice(0).map((l) => l.chainId));
      throw err;
    }
    this.ledger.flushedThrough(upTo);
    // In commit order: the ones this syncfs covered come first.
    const after = this.mine.findIndex((l) => l.commit > upTo);
    const covered = this.mine.splice(0, after < 0 ? this.mine.length : after);
    this.vouching.vouched(covered.map((l) => l.chainId));
  }
}

async function syncfsNaming(fd: number, dir: string): Promise<void> {
  try {
    await syncFilesystem(fd, dir);
  } catch (err) {
    throw fsError(err, dir, 'syncfs');
  }
}
