import { describe, expect, it } from 'vitest';
import { freeReadBuffers, openReader, returnReadBuffers, takeReadBuffer } from './read-buffers.js';

describe('read buffers', () => {
  it('reuses returned buffers of the sizes readers ask for while a reader is open, and keeps none after', () => {
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
    const second = openReader();
    close();
    close();
    // Another download still reads: the buffers stay.
    expect(freeReadBuffers(4096)).toBe(256);
    second();
    expect(freeReadBuffers(4096)).toBe(0);
    // With no reader open, nothing is kept.
    returnReadBuffers([new ArrayBuffer(4096)]);
    expect(freeReadBuffers(4096)).toBe(0);
    expect(takeReadBuffer(4096).buffer).not.toBe(back);
  });
});
