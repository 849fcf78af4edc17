import { afterEach, describe, expect, it, vi } from 'vitest';
import { emptyReadBuffers, freeReadBuffers, nextReadSize, openReader, returnReadBuffers, takeReadBuffer } from './read-buffers.js';

afterEach(() => {
  vi.useRealTimers();
  emptyReadBuffers();
});

describe('read buffers', () => {
  it('reuses returned buffers of the sizes readers ask for, up to a bound', () => {
    const close = openReader();
    const first = takeReadBuffer(4096);
    expect(first.length).toBe(4096);
    const back = new ArrayBuffer(4096);
    returnReadBuffers([back, new ArrayBuffer(1000), new ArrayBuffer(0)]);
    // Only the size asked for is kept.
    expect(freeReadBuffers(4096)).toBe(1);
    expect(freeReadBuffers(1000)).toBe(0);
    const reused = takeReadBuffer(4096);
    expect(reused.buffer).toBe(back);
    expect(freeReadBuffers(4096)).toBe(0);
    // At most 16 MiB are kept, of every size together.
    takeReadBuffer(1 << 20);
    returnReadBuffers(Array.from({ length: 20 }, () => new ArrayBuffer(1 << 20)));
    expect(freeReadBuffers(1 << 20)).toBe(16);
    returnReadBuffers([new ArrayBuffer(4096)]);
    expect(freeReadBuffers(4096)).toBe(0);
    takeReadBuffer(1 << 20);
    returnReadBuffers([new ArrayBuffer(4096), new ArrayBuffer(4096)]);
    expect(freeReadBuffers(4096)).toBe(2);
    close();
  });

  it('grows the next read while reads fill their buffers, and shrinks it after a small one', () => {
    const sizes = { min: 64 << 10, max: 1 << 20, smallShare: 4 };
    let size = sizes.min;
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push((size = nextReadSize(size, size, sizes)));
    expect(seen).toEqual([128 << 10, 256 << 10, 512 << 10, 1 << 20, 1 << 20, 1 << 20]);
    // A read filling a quarter or more keeps the size; less halves it, down to the least.
    expect(nextReadSize(1 << 20, 256 << 10, sizes)).toBe(1 << 20);
    expect(nextReadSize(1 << 20, (256 << 10) - 1, sizes)).toBe(512 << 10);
    expect(nextReadSize(128 << 10, 1000, sizes)).toBe(64 << 10);
    expect(nextReadSize(64 << 10, 1000, sizes)).toBe(64 << 10);
  });

  it('keeps the free buffers for 2 s after the last reader ends, for the next one, and none after', () => {
    vi.useFakeTimers();
    const close = openReader();
    takeReadBuffer(4096);
    returnReadBuffers([new ArrayBuffer(4096), new ArrayBuffer(4096)]);
    const second = openReader();
    close();
    close();
    // Another download still reads: the buffers stay.
    expect(freeReadBuffers(4096)).toBe(2);
    second();
    // The last reader ended: buffers still come back, and stay a while.
    returnReadBuffers([new ArrayBuffer(4096)]);
    vi.advanceTimersByTime(1900);
    expect(freeReadBuffers(4096)).toBe(3);
    // A reader opening meanwhile takes them, and keeps the rest from being dropped.
    const third = openReader();
    const kept = takeReadBuffer(4096).buffer;
    vi.advanceTimersByTime(5000);
    expect(freeReadBuffers(4096)).toBe(2);
    third();
    vi.advanceTimersByTime(1999);
    expect(freeReadBuffers(4096)).toBe(2);
    vi.advanceTimersByTime(1);
    expect(freeReadBuffers(4096)).toBe(0);
    // With no reader open, nothing is kept, and a buffer asked for is new.
    returnReadBuffers([new ArrayBuffer(4096)]);
    expect(freeReadBuffers(4096)).toBe(0);
    expect(takeReadBuffer(4096).buffer).not.toBe(kept);
  });

  it('frees the memory of the buffers it lets go of at once, not at the next full GC', async () => {
    const close = openReader();
    takeReadBuffer(1 << 20);
    const kept = Array.from({ length: 8 }, () => new ArrayBuffer(1 << 20));
    returnReadBuffers(kept);
    // Over the bound of 16 MiB: the ninth buffer onwards is not kept, and is freed.
    const over = Array.from({ length: 9 }, () => new ArrayBuffer(1 << 20));
    returnReadBuffers(over);
    expect(freeReadBuffers(1 << 20)).toBe(16);
    expect(over.slice(0, 8).every((b) => b.byteLength === 1 << 20)).toBe(true);
    expect(over[8]!.byteLength).toBe(0);
    close();
    const before = process.memoryUsage().arrayBuffers;
    emptyReadBuffers();
    // Moved away (detached) now, and their memory freed by the next turn of the event loop.
    expect([...kept, ...over.slice(0, 8)].every((b) => b.byteLength === 0)).toBe(true);
    await new Promise((r) => setTimeout(r, 0));
    expect(before - process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(16 << 20);
    // A size no reader asked for is freed too, and a buffer listed twice is no failure.
    const stray = new ArrayBuffer(4096);
    returnReadBuffers([stray, stray]);
    expect(stray.byteLength).toBe(0);
  });
});
