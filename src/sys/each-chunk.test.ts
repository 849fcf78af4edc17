import { Readable } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { eachChunk } from './each-chunk.js';

/** A stream whose chunks the test pushes itself. */
const pushable = () => new Readable({ read() {} });

describe('eachChunk', () => {
  it('hands over each chunk as pushed, never a concatenation, while a promise holds the stream', async () => {
    const source = pushable();
    const chunks = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three'), Buffer.from('four')];
    const seen: Buffer[] = [];
    let release: (() => void) | undefined;
    const done = eachChunk(source, (chunk) => {
      seen.push(chunk);
      // The first chunk holds the stream while the rest are pushed: `for await` would read them
      // back as one concatenated buffer.
      if (seen.length === 1) return new Promise<void>((r) => (release = r));
      return undefined;
    });
    source.push(chunks[0]);
    await turn();
    expect(seen).toHaveLength(1);
    for (const c of chunks.slice(1)) source.push(c);
    source.push(null);
    await turn();
    expect(seen).toHaveLength(1);
    release!();
    await done;
    expect(seen.length).toBe(4);
    seen.forEach((c, i) => expect(c).toBe(chunks[i]));
  });

  it("resolves only after fn's promise for the last chunk", async () => {
    const order: string[] = [];
    await eachChunk(Readable.from([Buffer.from('a'), Buffer.from('b')]), async (chunk) => {
      await turn();
      order.push(chunk.toString());
    });
    order.push('done');
    expect(order).toEqual(['a', 'b', 'done']);
  });

  it("rejects with the stream's error, with a premature close, and with what fn throws or rejects with", async () => {
    const failing = pushable();
    const p1 = eachChunk(failing, () => undefined);
    failing.destroy(new Error('reset by peer'));
    await expect(p1).rejects.toThrow('reset by peer');

    const cut = pushable();
    const p2 = eachChunk(cut, () => undefined);
    cut.push(Buffer.from('x'));
    cut.destroy();
    await expect(p2).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });

    const thrown = pushable();
    const p3 = eachChunk(thrown, () => {
      throw new Error('too big');
    });
    thrown.push(Buffer.from('x'));
    await expect(p3).rejects.toThrow('too big');
    thrown.destroy();

    const rejected = pushable();
    const p4 = eachChunk(rejected, () => Promise.reject(new Error('sink failed')));
    rejected.push(Buffer.from('x'));
    await expect(p4).rejects.toThrow('sink failed');
    rejected.destroy();
  });

  it('a stream destroyed while fn holds it rejects at once, and the late promise changes nothing', async () => {
    const source = pushable();
    let release: (() => void) | undefined;
    const done = eachChunk(source, () => new Promise<void>((r) => (release = r)));
    source.push(Buffer.from('x'));
    await turn();
    source.destroy(new Error('aborted'));
    await expect(done).rejects.toThrow('aborted');
    release!();
    await turn();
    expect(source.isPaused()).toBe(true);
  });
});
