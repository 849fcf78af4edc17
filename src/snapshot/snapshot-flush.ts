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
import { open, type FileHandle } from 'node:fs/promises';
import { fsError } from '../errors.js';
import { log } from '../log.js';
import { syncFilesystem } from '../sys/libc.js';

/** syncfs through `fd`, an open descriptor of `dir` (named in errors). */
export type Syncfs = (fd: number, dir: string) => Promise<void>;

/**
 * The layers a snapshotter committed and how many of them a finished flush covers, across all
 * pulls: a pull that committed nothing, with every earlier commit flushed, has nothing to flush
 * (a re-pull of a present image, at every container start under imagePullPolicy Always).
 */
export class FlushLedger {
  /** It starts at one: a restarted daemon cannot tell whether its predecessor flushed its last commits. */
  private commitCount = 1;
  private flushedCount = 0;
  /** The chain IDs of the layers committed since the last finished flush, by commit number. */
  private readonly unflushed = new Map<number, string>();

  get commits(): number {
    return this.commitCount;
  }

  get flushed(): number {
    return this.flushedCount;
  }

  committed(chainId: string): void {
    this.unflushed.set(++this.commitCount, chainId);
  }

  /** A flush that began when `commits` layers were committed finished. */
  flushedThrough(commits: number): void {
    this.flushedCount = Math.max(this.flushedCount, commits);
    for (const n of this.unflushed.keys()) if (n <= this.flushedCount) this.unflushed.delete(n);
  }

  /**
   * A flush failed: every layer no finished flush covers may have lost pages. Their chain IDs,
   * which leave the ledger (a layer unpacked again is a new commit).
   */
  takeUnflushed(): string[] {
    const chains = [...this.unflushed.values()];
    this.unflushed.clear();
    return chains;
  }
}

export class SnapshotFlush {
  /** Commits this descriptor's syncfs has checked for errors: none yet of those after its open. */
  private checkedThrough: number;
  private ahead: Promise<void> | undefined;
  /** Why a flush ahead failed, until flush() reports it. */
  private aheadFailure: { err: unknown } | undefined;
  private closed = false;

  private constructor(private readonly fh: FileHandle, private readonly dir: string,
    private readonly ledger: FlushLedger, private readonly lost: (chainIds: string[]) => void,
    private readonly syncfs: Syncfs) {
    this.checkedThrough = ledger.commits;
  }

  /**
   * Open the flush of `dir`'s filesystem before the pull's first write into it. When a flush
   * fails, `lost` is told the layers whose pages it may have lost: no later pull may reuse them
   * (its own descriptor, opened after the error was reported, would not hear of it).
   */
  static async open(dir: string, ledger: FlushLedger, lost: (chainIds: string[]) => void,
    syncfs: Syncfs = syncfsNaming): Promise<SnapshotFlush> {
    let fh: FileHandle;
    try {
      fh = await open(dir, 'r');
    } catch (err) {
      throw fsError(err, dir, 'open');
    }
    return new SnapshotFlush(fh, dir, ledger, lost, syncfs);
  }

  /**
   * Start flushing the layers committed so far in the background, one such flush at a time. A
   * failure is kept for flush(), which throws it: its descriptor has taken that error, and a
   * later syncfs through it would not report it again.
   */
  flushAhead(): void {
    if (this.ahead || this.closed || !this.pending()) return;
    this.ahead = this.run()
      .catch((err: unknown) => {
        this.aheadFailure ??= { err };
        log.warn({ err, dir: this.dir }, 'background flush of the snapshots failed; the pull that started it fails with it');
      })
      .finally(() => (this.ahead = undefined));
  }

  /** Throw the error a flush ahead met, if one did: a pull stops committing on lost layers. */
  throwIfFailed(): void {
    if (this.aheadFailure) throw this.aheadFailure.err;
  }

  /**
   * Flush what is left (after any flush ahead), or throw the write error one of them met since
   * this flush was opened: then the layers may not be on disk, and no record may point at them.
   */
  async flush(): Promise<void> {
    await this.ahead;
    const failure = this.aheadFailure;
    this.aheadFailure = undefined;
    if (failure) throw failure.err;
    await this.run();
  }

  /** Close the descriptor, once no flush ahead can still use its number. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ahead;
    await this.fh.close();
  }

  /**
   * A layer no finished flush covers, or one committed since this flush opened that its own
   * syncfs has not checked: another pull's flush may have put it on disk, and taken its error.
   */
  private pending(): boolean {
    return this.ledger.commits > Math.min(this.ledger.flushed, this.checkedThrough);
  }

  private async run(): Promise<void> {
    if (!this.pending()) return;
    const upTo = this.ledger.commits;
    try {
      await this.syncfs(this.fh.fd, this.dir);
    } catch (err) {
      this.lost(this.ledger.takeUnflushed());
      throw err;
    }
    this.checkedThrough = upTo;
    this.ledger.flushedThrough(upTo);
  }
}

async function syncfsNaming(fd: number, dir: string): Promise<void> {
  try {
    await syncFilesystem(fd, dir);
  } catch (err) {
    throw fsError(err, dir, 'syncfs');
  }
}
