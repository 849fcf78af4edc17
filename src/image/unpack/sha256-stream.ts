// sha256 of a layer's tar, off the main thread for big layers. Hashing costs ~0.7 ms per MB of
// main-thread CPU — a third of an uncompressed unpack, which is otherwise syscall-bound — while
// handing a chunk to a worker costs a memcpy. Small layers hash inline: a worker's start-up
// (~20 ms) would cost more than it saves.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

export interface Sha256Sink {
  update(chunk: Buffer): void;
  /** The "sha256:<hex>" digest of everything given to update(). */
  digest(): Promise<string>;
  /** Release resources after a failure. */
  close(): void;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const h = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === null) parentPort.postMessage(h.digest('hex'));
  else h.update(m);
});
`;

export function inlineSha256(): Sha256Sink {
  const h = createHash('sha256');
  return {
    update: (c) => h.update(c),
    digest: async () => `sha256:${h.digest('hex')}`,
    close: () => undefined,
  };
}

export function workerSha256(): Sha256Sink {
  const w = new Worker(WORKER_SOURCE, { eval: true });
  let failure: Error | undefined;
  w.on('error', (err) => {
    failure = err;
  });
  return {
    // postMessage clones the bytes, so the caller may reuse its buffer at once.
    update: (c) => w.postMessage(c),
    digest: () => new Promise<string>((resolve, reject) => {
      if (failure) {
        reject(failure);
        return;
      }
      w.once('error', reject);
      w.once('message', (hex: string) => {
        resolve(`sha256:${hex}`);
        void w.terminate();
      });
      w.postMessage(null);
    }),
    close: () => void w.terminate(),
  };
}
