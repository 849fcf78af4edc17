// sha256 on a worker thread, for the zstd path. There the main thread is the bottleneck (the
// zstd CLI decompresses on the other core) and hashing is ~0.7 ms of its CPU per MB. Chunks
// that own their whole ArrayBuffer (pipe reads do) are transferred, not copied; the caller
// must be done with a chunk before handing it over.
import { Worker } from 'node:worker_threads';

const SOURCE = `
const { parentPort } = require('node:worker_threads');
const h = require('node:crypto').createHash('sha256');
parentPort.on('message', (m) => {
  if (m === null) parentPort.postMessage(h.digest('hex'));
  else h.update(m);
});
`;

export class Sha256Worker {
  private readonly worker = new Worker(SOURCE, { eval: true });
  private failure: Error | undefined;

  constructor() {
    this.worker.on('error', (err) => {
      this.failure = err;
    });
  }

  /** Hash `chunk`; it may be detached afterwards and must not be used again. */
  update(chunk: Buffer): void {
    const ab = chunk.buffer;
    if (chunk.byteOffset === 0 && ab.byteLength === chunk.length && ab instanceof ArrayBuffer) {
      const view = new Uint8Array(ab);
      this.worker.postMessage(view, [ab]);
    } else {
      this.worker.postMessage(chunk);
    }
  }

  digest(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      this.worker.once('error', reject);
      this.worker.once('message', (hex: string) => resolve(`sha256:${hex}`));
      this.worker.postMessage(null);
    });
  }

  close(): void {
    void this.worker.terminate();
  }
}
