import { afterEach, describe, expect, it, vi } from 'vitest';
import { emptyReadBuffers, freeReadBuffers, openReader, returnReadBuffers, takeReadBuffer } from './read-buffers.js';

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
    returnReadBuffers(Array.from({ length: 300 }, () => new ArrayBuffer(4096)));
    expect(freeReadBuffers(4096)).toBe(256);
    close();
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
});
