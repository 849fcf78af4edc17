import { describe, expect, it } from 'vitest';
import { ListingForecast } from './listing-forecast.js';

const opts = { minPeriodMs: 1000, maxPeriodMs: 60_000, followUps: 2, followUpMs: 700, freshMs: 1000, catchUpMs: 200 };

describe('ListingForecast', () => {
  it('expects the next listing one period after the last, lead before it, then follows up a bounded number of times', () => {
    const f = new ListingForecast<string>(opts);
    f.listed(() => ['a'], 0, 400);
    expect(f.due).toBeUndefined(); // no period yet
    f.listed(() => ['a', 'b'], 10_000, 400);
    expect(f.subjects()).toEqual(['a', 'b']);
    // This listing was served the first one's readings, never refreshed: a catch-up first.
    expect(f.due).toBe(10_200);
    f.refreshed(10_200);
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
    f.refreshed(10_200); // the catch-up
    f.listed(() => [], 10_500, 400); // served from the previous one's readings
    expect(f.due).toBe(10_500 + 10_000 - 400);
    f.listed(() => [], 200_000, 400);
    expect(f.due).toBeUndefined();
  });

  it('catches up after a listing that came before its refresh (the period changed), then expects the new period', () => {
    const f = new ListingForecast<string>(opts);
    f.listed(() => [], 0, 400);
    f.listed(() => [], 30_000, 400);
    f.refreshed(30_200);
    f.refreshed(59_600);
    f.refreshed(60_300);
    f.listed(() => [], 60_500, 400); // on time: its refresh's last follow-up ran 200 ms before
    expect(f.due).toBe(60_500 + 30_500 - 400);
    f.listed(() => [], 70_500, 400); // early: served readings 10.2 s old
    expect(f.due).toBe(70_700);
    f.refreshed(70_700);
    expect(f.due).toBe(70_500 + 10_000 - 400);
    f.refreshed(80_100);
    f.listed(() => [], 80_500, 400); // on time again
    expect(f.due).toBe(90_100);
  });
});
