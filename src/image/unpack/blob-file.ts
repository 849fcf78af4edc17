// A downloading layer's blob file, written and hashed on its unpack thread as the bytes arrive.
// The thread already receives every compressed byte to unpack it; writing and hashing them there
// too leaves the daemon's event loop only the network reads (on it, the writes and the sha256
// cost a 100 MB pull about a third of a second of main-thread CPU). The content store
// (content-store.ts) owns the file's name, checks the digest reported here and renames the file
// into place; this only writes it.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { fsError } from '../../errors.js';

export class BlobFile {
  private fd: number | undefined;
  private readonly hash = createHash('sha256');

  /** Creates `path`, which must not exist (the content store names a fresh temp file). */
  constructor(private readonly path: string) {
    try {
      this.fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      throw fsError(err, path, 'create');
    }
  }

  write(chunk: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`blob file ${this.path} written after it was closed`);
    try {
      for (let off = 0; off < chunk.length;) off += writeSync(this.fd, chunk, off);
    } catch (err) {
      throw fsError(err, this.path, 'write');
    }
    this.hash.update(chunk);
  }

  /** Every byte is in: sync and close the file; the sha256 digest of what was written. */
  finish(): string {
    if (this.fd === undefined) throw new Error(`blob file ${this.path} finished after it was closed`);
    const fd = this.fd;
    this.fd = undefined;
    try {
      fsyncSync(fd);
    } catch (err) {
      closeQuietly(fd);
      throw fsError(err, this.path, 'fsync');
    }
    try {
      closeSync(fd);
    } catch (err) {
      throw fsError(err, this.path, 'close');
    }
    return `sha256:${this.hash.digest('hex')}`;
  }

  /** Close without syncing (a failed or aborted job); the content store removes the file. */
  close(): void {
    if (this.fd === undefined) return;
    closeQuietly(this.fd);
    this.fd = undefined;
  }
}

/** Close a file whose contents are being discarded: an error closing it changes nothing. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* the file is removed by its owner */
  }
}
