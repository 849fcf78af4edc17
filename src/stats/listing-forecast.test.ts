import { describe, expect, it } from 'vitest';
import { ListingForecast } from './listing-forecast.js';

const opts = { minPeriodMs: 1000, maxPeriodMs: 60_000, followUps: 2, followUpMs: 700 };

describe('ListingForecast', () => {
  it('expects the next listing one period after the last, lead before it, then follows up a bounded number of times', () => {
    const f = new ListingForecast<string>(opts);
    f.listed(() => ['a'], 0, 400);
    expect(f.due).toBeUndefined(); // no period yet
    f.listed(() => ['a', 'b'], 10_000, 400);
    expect(f.subjects()).toEqual(['a', 'b']);
    expect(f.due).toBe(19_600);
    f.refreshed(19_600);
    expect(f.due).toBe(20_300);
    f.refreshed(20_300);
    expect(f.due).toBe(21_000);
    f.refreshed(21_000);
    expect(f.due).toBeUndefined();
  });

  it('ignores a listing right after another (a second caller) and forgets a period that is too long', () => {
    const f = new ListingForecast<string>(opts);
    f.listed(() => [], 0, 400);
    f.listed(() => [], 10_000, 400);
    f.listed(() => [], 10_500, 400); // served from the previous one's readings
    expect(f.due).toBe(10_500 + 10_000 - 400);
    f.listed(() => [], 200_000, 400);
    expect(f.due).toBeUndefined();
  });
});
