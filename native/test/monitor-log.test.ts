// crib-monitor's CRI log file: record format, line splitting, streams, timestamps, reopen after
// rotation, the symlink refusal, and a container that floods its output with nobody reading.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rename, symlink, writeFile, stat, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, parseLog, waitFor } from './support/monitor-harness.js';

const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$/;

let h: Harness;
beforeAll(async () => { h = await Harness.create(); });
afterAll(async () => { await h?.cleanup(); });

describe('crib-monitor log file', () => {
  it('writes F records for lines, P,P,F for a 40 KiB line, P for an unterminated tail, tagged by stream', async () => {
    const c = await h.create({
      args: ['sh', '-c', 'echo hello; echo oops >&2; head -c 40960 /dev/zero | tr "\\0" a; echo; printf "no newline"'],
    });
    expect(c.sync.pid).toBeGreaterThan(0);
    expect(c.monitorExit).toBe(0);
    await c.start();
    const exit = await c.waitExit();
    expect(exit.exitCode).toBe(0);
    const recs = await c.log();
    const out = recs.filter((r) => r.stream === 'stdout').map((r) => [r.tag, r.content.length, r.content.slice(0, 10)]);
    expect(out).toEqual([
      ['F', 5, 'hello'],
      ['P', 16384, 'aaaaaaaaaa'],
      ['P', 16384, 'aaaaaaaaaa'],
      ['F', 8192, 'aaaaaaaaaa'],
      ['P', 10, 'no newline'],
    ]);
    const err = recs.filter((r) => r.stream === 'stderr').map((r) => [r.tag, r.content]);
    expect(err).toEqual([['F', 'oops']]);
    let last = 0;
    for (const r of recs) {
      expect(r.time).toMatch(RFC3339_NANO);
      const t = Date.parse(r.time);
      expect(Number.isNaN(t)).toBe(false);
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
    expect(Math.abs(last - Date.now())).toBeLessThan(60_000);
    const mode = (await stat(c.logPath)).mode & 0o777;
    expect(mode).toBe(0o640);
  });

  it('keeps a line of exactly --log-max-line bytes as one F record', async () => {
    const c = await h.create({
      args: ['sh', '-c', 'head -c 64 /dev/zero | tr "\\0" b; echo; head -c 65 /dev/zero | tr "\\0" c; echo'],
      logMaxLine: 64,
    });
    await c.start();
    await c.waitExit();
    const recs = (await c.log()).map((r) => [r.tag, r.content]);
    expect(recs).toEqual([['F', 'b'.repeat(64)], ['P', 'c'.repeat(64)], ['F', 'c']]);
  });

  it('reopens the log at the same path after kubelet renamed it', async () => {
    const c = await h.create({
      args: ['sh', '-c', 'i=0; while true; do echo line$i; i=$((i+1)); sleep 0.02; done'],
    });
    await c.start();
    await waitFor('first lines', async () => (await c.log()).length >= 5);
    const rotated = `${c.logPath}.1`;
    await rename(c.logPath, rotated);
    // The reply comes once the new file is open: it exists when the call returns.
    expect(await c.ctl({ cmd: 'reopen' })).toEqual({ ok: true });
    expect(existsSync(c.logPath)).toBe(true);
    await waitFor('lines in the new file', async () => (await c.log()).length >= 5);
    await h.runtime('kill', c.id, 'KILL');
    await c.waitExit();
    const before = parseLog(await readFile(rotated, 'utf8')).map((r) => Number(r.content.slice(4)));
    const after = (await c.log()).map((r) => Number(r.content.slice(4)));
    // Every line is in exactly one of the files, in order, with no gap at the switch.
    const all = [...before, ...after];
    expect(all).toEqual(all.map((_, i) => i));
    expect(after.length).toBeGreaterThanOrEqual(5);
  });

  it('refuses a log path that is a symlink and reports it on the sync fd', async () => {
    const dir = join(h.dir, 'symlink-case');
    await mkdir(dir, { recursive: true });
    const target = join(dir, 'target');
    await writeFile(target, 'untouched');
    const link = join(dir, 'ctr.log');
    await symlink(target, link);
    const c = await h.create({ args: ['true'], logPath: link });
    expect(c.sync.pid).toBe(-1);
    expect(c.sync.message).toMatch(/symlink/);
    expect(c.monitorExit).toBe(1);
    expect(await readFile(target, 'utf8')).toBe('untouched');
    // Nothing was created: the runtime never ran.
    await expect(h.runtime('state', c.id)).rejects.toThrow();
  });

  it('drains a container that floods stdout while nobody reads, so it finishes', async () => {
    // 24 MiB without newlines (P records) and 100k short lines (F records).
    const c = await h.create({
      args: ['sh', '-c', 'dd if=/dev/zero bs=1048576 count=24 2>/dev/null | tr "\\0" x; yes | head -n 100000; echo done >&2'],
    });
    await c.start();
    const exit = await c.waitExit(50_000);
    expect(exit.exitCode).toBe(0);
    const recs = await c.log();
    // 24 MiB is a whole number of 16 KiB records, so the x run is all full P records and each
    // "y" line that follows it is an F record of its own.
    const xs = recs.filter((r) => r.stream === 'stdout' && r.content.startsWith('x'));
    expect(xs.every((r) => r.tag === 'P' && r.content.length === 16384)).toBe(true);
    expect(xs.length).toBe((24 * 1048576) / 16384);
    const ys = recs.filter((r) => r.stream === 'stdout' && r.tag === 'F' && r.content === 'y');
    expect(ys.length).toBe(100_000);
    expect(recs.some((r) => r.stream === 'stderr' && r.content === 'done')).toBe(true);
  }, 60_000);
});
