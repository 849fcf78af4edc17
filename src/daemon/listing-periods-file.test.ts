import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keepListingPeriods, saveListingPeriods, takeListingPeriods } from './listing-periods-file.js';

let state: string;
beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'crib-periods-'));
});
afterEach(async () => {
  await rm(state, { recursive: true, force: true });
});
const file = () => join(state, 'stats-listing-periods.json');

describe('stats listing periods handed from one daemon to the next', () => {
  it('are saved at a stop and taken once at the next start', async () => {
    const periods = { containers: { periodMs: 10_000, lastListedAtMs: 1_700_000_000_000 }, pods: { periodMs: 10_000, lastListedAtMs: 1_700_000_000_050 } };
    await saveListingPeriods(state, periods);
    expect(JSON.parse(await readFile(file(), 'utf8'))).toEqual({ version: 1, ...periods });
    expect(await takeListingPeriods(state)).toEqual(periods);
    expect(existsSync(file())).toBe(false);
    expect(await takeListingPeriods(state)).toBeUndefined();
  });

  it('writes no file when no period is known', async () => {
    await saveListingPeriods(state, {});
    expect(existsSync(file())).toBe(false);
  });

  it('drops what is not a period, and a file that is not one at all, and removes it either way', async () => {
    await writeFile(file(), JSON.stringify({ version: 1, containers: { periodMs: 'soon', lastListedAtMs: 1 }, pods: { periodMs: 10_000, lastListedAtMs: 5 } }));
    expect(await takeListingPeriods(state)).toEqual({ pods: { periodMs: 10_000, lastListedAtMs: 5 } });
    expect(existsSync(file())).toBe(false);
    await writeFile(file(), '{"version": 1, "pods": ');
    expect(await takeListingPeriods(state)).toBeUndefined();
    expect(existsSync(file())).toBe(false);
    await writeFile(file(), JSON.stringify({ version: 99 }));
    expect(await takeListingPeriods(state)).toBeUndefined();
    expect(existsSync(file())).toBe(false);
  });

  it('are saved while the daemon runs (a kill -9 leaves them) and once more at its stop, then no more', async () => {
    let lastListedAtMs = 1_700_000_000_000;
    const periods = () => ({ pods: { periodMs: 10_000, lastListedAtMs } });
    const saved = async () => (JSON.parse(await readFile(file(), 'utf8')) as { pods: { lastListedAtMs: number } }).pods.lastListedAtMs;
    const keeper = keepListingPeriods(state, periods, 20);
    await new Promise((r) => setTimeout(r, 100));
    expect(await saved()).toBe(1_700_000_000_000);
    lastListedAtMs += 10_000;
    await new Promise((r) => setTimeout(r, 100));
    expect(await saved()).toBe(1_700_000_010_000);
    lastListedAtMs += 10_000;
    await keeper.stop();
    expect(await saved()).toBe(1_700_000_020_000);
    lastListedAtMs += 10_000;
    await new Promise((r) => setTimeout(r, 100));
    expect(await saved()).toBe(1_700_000_020_000);
  });
});
