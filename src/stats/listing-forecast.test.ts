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

  it('ignores a listing right after another (a second caller); after a pause the last period is only presumed', () => {
    const f = new ListingForecast<string>(opts);
    f.listed(() => [], 0, 400);
    f.listed(() => [], 10_000, 400);
    expect(f.periodic).toBe(true);
    f.refreshed(10_200); // the catch-up
    f.listed(() => [], 10_500, 400); // served from the previous one's readings
    expect(f.due).toBe(10_500 + 10_000 - 400);
    // 190 s is no period: the caller paused. Its old period is presumed, for one refresh.
    f.listed(() => [], 200_000, 400);
    expect(f.periodic).toBe(false);
    expect(f.saved(200_000, 1_200_000)).toBeUndefined();
    expect(f.due).toBe(200_000 + 10_000 - 400);
    f.refreshed(209_600);
    expect(f.due).toBeUndefined(); // no follow-ups for a presumption
    // Back on its period: measured again, with its follow-ups.
    f.listed(() => [], 210_000, 400);
    expect(f.periodic).toBe(true);
    f.refreshed(219_600);
    expect(f.due).toBe(220_300);
  });

  it('presumes kubelet\'s period before any is measured: one refresh, no catch-up, no follow-ups', () => {
    const f = new ListingForecast<string>({ ...opts, presumedPeriodMs: 10_000 });
    f.listed(() => ['a'], 5_000, 400);
    expect(f.periodic).toBe(false);
    expect(f.due).toBe(5_000 + 10_000 - 400); // not a catch-up: this listing read for itself
    f.refreshed(14_600);
    expect(f.due).toBeUndefined();
    // A caller listing every second (crictl stats) pushes the presumed refresh on, and measures
    // no period: its listings are read for, never served older readings.
    const g = new ListingForecast<string>({ ...opts, presumedPeriodMs: 10_000 });
    g.listed(() => [], 0, 400);
    g.listed(() => [], 500, 400);
    expect(g.periodic).toBe(false);
    expect(g.due).toBe(500 + 10_000 - 400);
    // Without a presumption (and nothing measured) nothing is read ahead.
    const h = new ListingForecast<string>(opts);
    h.listed(() => [], 0, 400);
    expect(h.due).toBeUndefined();
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

  it('hands its period to the next daemon, which expects the caller\'s next tick across the restart', () => {
    const old = new ListingForecast<string>(opts);
    expect(old.saved(0, 1_000_000)).toBeUndefined(); // no period known: nothing to hand over
    old.listed(() => [], 0, 400);
    old.listed(() => [], 10_000, 400);
    // Its monotonic clock reads 12_000 when the wall clock reads 1_012_000.
    const saved = old.saved(12_000, 1_012_000)!;
    expect(saved).toEqual({ periodMs: 10_000, lastListedAtMs: 1_010_000 });

    // The next daemon starts 3 s later (wall 1_015_000), its monotonic clock at 500: the
    // caller's next listing comes at wall 1_020_000, 5.5 s from now.
    const next = new ListingForecast<string>(opts);
    expect(next.resume(saved, () => ['a'], 500, 1_015_000, 400)).toBe(true);
    expect(next.subjects()).toEqual(['a']);
    expect(next.due).toBe(500 + 5000 - 400);
    next.refreshed(5100);
    next.listed(() => [], 5500, 400); // on its tick: the period holds, and no catch-up
    expect(next.due).toBe(5500 + 10_000 - 400);

    // A restart that spanned two of the caller's ticks (their calls failed): the next one is due.
    const late = new ListingForecast<string>(opts);
    expect(late.resume(saved, () => [], 0, 1_031_000, 400)).toBe(true);
    expect(late.due).toBe(9000 - 400);
    // A listing due within the lead: refreshed at once.
    const soon = new ListingForecast<string>(opts);
    expect(soon.resume(saved, () => [], 0, 1_019_800, 400)).toBe(true);
    expect(soon.due).toBe(0);
  });

  it('resumes no period out of its bounds, nor one whose last listing is too long ago or in the future', () => {
    const f = new ListingForecast<string>(opts);
    expect(f.resume({ periodMs: 500, lastListedAtMs: 1_000_000 }, () => [], 0, 1_001_000, 400)).toBe(false);
    expect(f.resume({ periodMs: 70_000, lastListedAtMs: 1_000_000 }, () => [], 0, 1_001_000, 400)).toBe(false);
    expect(f.resume({ periodMs: 10_000, lastListedAtMs: 1_000_000 }, () => [], 0, 1_061_000, 400)).toBe(false);
    expect(f.resume({ periodMs: 10_000, lastListedAtMs: 1_000_000 }, () => [], 0, 999_000, 400)).toBe(false);
    expect(f.due).toBeUndefined();
    f.listed(() => [], 100, 400);
    expect(f.due).toBeUndefined(); // and it still knows no period
  });
});
