import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ResumableBlobStream } from './blob-stream.js';

const busy = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* spin */ }
};

describe('ResumableBlobStream', () => {
  it('hands a burst of body chunks on over several turns of the event loop, not in one', async () => {
    const body = new Readable({ read() {} });
    const stream = new ResumableBlobStream({ body, skip: 0 }, {
      digest: 'sha256:test', what: 'layer test', size: 40 * 1024, offset: 0, retries: 0, backoffMs: 10,
      progressTimeoutMs: 10_000, minBytesPerSecond: 1, minRateGraceMs: 60_000,
      reopen: () => Promise.reject(new Error('no resume expected')),
    });
    const got: Buffer[] = [];
    // The consumer takes 1 ms per chunk, synchronously, as the content store's hand-off does.
    stream.on('data', (chunk: Buffer) => {
      got.push(chunk);
      busy(1);
    });
    await new Promise((r) => setImmediate(r));
    // 40 chunks at once, as one socket read burst delivers them: in one turn that would hold the
    // loop for 40 ms.
    const seenBeforeTurn: number[] = [];
    const everyTurn = (): void => {
      seenBeforeTurn.push(got.length);
      if (got.length < 40) setImmediate(everyTurn);
    };
    setImmediate(everyTurn);
    for (let i = 0; i < 40; i++) body.push(Buffer.alloc(1024, i));
    body.push(null);
    await finished(stream);
    expect(Buffer.concat(got)).toEqual(Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(1024, i))));
    // Shares of about 2 ms: a handful of chunks per turn.
    const perTurn = seenBeforeTurn.map((n, i) => n - (seenBeforeTurn[i - 1] ?? 0));
    expect(perTurn.length).toBeGreaterThanOrEqual(6);
    expect(Math.max(...perTurn)).toBeLessThanOrEqual(6);
  });
});
