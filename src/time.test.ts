import { describe, expect, it } from 'vitest';
import { httpDate, isoTime } from './time.js';

describe('isoTime', () => {
  it('writes what Date.prototype.toISOString writes, across leap days, centuries and eras', () => {
    const edges = [0, -1, 951_782_400_000 /* 2000-02-29 */, 4_107_542_399_999 /* 2100-02-28T23:59:59.999 */,
      4_107_542_400_000, -62_167_219_200_000 /* 0000-01-01 */, 253_402_300_799_999 /* 9999-12-31T23:59:59.999 */,
      Date.UTC(1900, 1, 28, 12), Date.UTC(1600, 1, 29), Date.UTC(2024, 11, 31, 23, 59, 59, 999), 1.5];
    for (const ms of edges) {
      expect(isoTime(ms), String(ms)).toBe(new Date(ms).toISOString());
      expect(httpDate(ms), String(ms)).toBe(new Date(ms).toUTCString());
    }
    // Random instants over the whole four-digit range.
    let seed = 12345;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      const ms = -62_167_219_200_000 + Math.floor((seed / 2 ** 31) * (253_402_300_799_999 + 62_167_219_200_000));
      expect(isoTime(ms), String(ms)).toBe(new Date(ms).toISOString());
      expect(httpDate(ms), String(ms)).toBe(new Date(ms).toUTCString());
    }
  });

  it('leaves years past four digits to Date, and says now when given nothing', () => {
    expect(isoTime(253_402_300_800_000)).toBe('+010000-01-01T00:00:00.000Z');
    expect(httpDate(253_402_300_800_000)).toBe(new Date(253_402_300_800_000).toUTCString());
    expect(httpDate(Date.UTC(2026, 11, 5, 18, 19))).toBe('Sat, 05 Dec 2026 18:19:00 GMT');
    expect(isoTime(-62_167_219_200_001)).toBe('-000001-12-31T23:59:59.999Z');
    const before = Date.now();
    const now = Date.parse(isoTime());
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });
});
