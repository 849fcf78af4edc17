// MonitorWatch where no live protocol-2 monitor answers (the live protocol is tested with the
// real crib-monitor in native/test/monitor-ctl.test.ts and critest/monitor-failures.test.ts):
// a monitor of an older crib (a control fifo, no socket) is polled for its exit file and its
// life; a stale socket of a dead monitor ends in its exit file, or in "monitor-gone".
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RuntimeEvent, RuntimeRef } from './container-runtime.js';
import { MonitorWatch } from './monitor-watch.js';
import { processStartTime } from '../sys/process-identity.js';
import { runtimeFiles } from './runtime-files.js';

const EXIT = { exitCode: 4, signal: null, exitedAt: '2026-01-01T00:00:00.000000000Z', oomKilled: false };

describe('MonitorWatch without a live control socket', () => {
  let dir: string;
  let fakeMonitor: ChildProcess | undefined;
  let watch: MonitorWatch | undefined;
  const id = 'c'.repeat(64);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-watch-'));
  });
  afterEach(async () => {
    watch?.stop();
    if (fakeMonitor?.pid) {
      try {
        process.kill(-fakeMonitor.pid, 'SIGKILL'); // its sleep too
      } catch {
        // gone already
      }
    }
    await rm(dir, { recursive: true, force: true });
  });

  /** A process whose command line reads like a protocol-1 crib-monitor of container `id`. */
  async function legacyMonitor(): Promise<number> {
    fakeMonitor = spawn('/bin/sh', ['-c', 'sleep 1000', '/usr/lib/crib/crib-monitor', '--id', id], { stdio: 'ignore', detached: true });
    await new Promise((r) => setTimeout(r, 50));
    return fakeMonitor.pid!;
  }

  function events(ref: RuntimeRef): { got: RuntimeEvent[]; watch: MonitorWatch } {
    const got: RuntimeEvent[] = [];
    watch = new MonitorWatch(ref, (e) => got.push(e));
    return { got, watch };
  }

  const until = async (what: string, fn: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!fn()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('polls the exit file of a protocol-1 monitor (a fifo, no socket) at a slow rate', async () => {
    const { execFile } = await import('node:child_process');
    await new Promise((resolve, reject) => execFile('mkfifo', [runtimeFiles(dir).legacyCtlFifo], (e) => (e ? reject(e) : resolve(null))));
    // A record from before start times were kept: the command line must name the container.
    const { got, watch: w } = events({ id, dir, monitorPid: await legacyMonitor() });
    await w.begin();
    expect(got).toEqual([]);
    await writeFile(runtimeFiles(dir).exitFile, JSON.stringify(EXIT));
    const t0 = Date.now();
    await until('the exit', () => got.length > 0);
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(got).toEqual([{ kind: 'exited', exit: EXIT }]);
  });

  it('reports a protocol-1 monitor that died without an exit file as gone', async () => {
    const { execFile } = await import('node:child_process');
    await new Promise((resolve, reject) => execFile('mkfifo', [runtimeFiles(dir).legacyCtlFifo], (e) => (e ? reject(e) : resolve(null))));
    const pid = await legacyMonitor();
    const { got, watch: w } = events({ id, dir, monitorPid: pid });
    await w.begin();
    process.kill(-pid, 'SIGKILL');
    await until('gone', () => got.length > 0);
    expect(got).toEqual([{ kind: 'monitor-gone', detail: expect.stringContaining(`crib-monitor (pid ${pid}) is gone`) }]);
  });

  it('does not take a process with the same pid but another start time for the monitor', async () => {
    const { execFile } = await import('node:child_process');
    await new Promise((resolve, reject) => execFile('mkfifo', [runtimeFiles(dir).legacyCtlFifo], (e) => (e ? reject(e) : resolve(null))));
    const pid = await legacyMonitor();
    const real = processStartTime(pid)!;
    const { got, watch: w } = events({ id, dir, monitorPid: pid, monitorStartTime: String(Number(real) - 1) });
    await w.begin();
    expect(got).toEqual([{ kind: 'monitor-gone', detail: expect.stringContaining('is gone') }]);
  });

  it('reads the exit file behind a stale socket of a monitor that is gone, and reports gone without one', async () => {
    // A socket file nobody listens on any more (ECONNREFUSED), as a killed monitor leaves it.
    const files = runtimeFiles(dir);
    const server = createServer();
    await new Promise<void>((r) => server.listen(files.ctlSocket, r));
    const { unlinkSync, linkSync } = await import('node:fs');
    linkSync(files.ctlSocket, `${files.ctlSocket}.keep`);
    await new Promise<void>((r) => server.close(() => r()));
    linkSync(`${files.ctlSocket}.keep`, files.ctlSocket);
    unlinkSync(`${files.ctlSocket}.keep`);
    const dead = { id, dir, monitorPid: 2 ** 22 + 1, monitorStartTime: '1' };

    let w = events(dead);
    await w.watch.begin();
    expect(w.got).toEqual([{ kind: 'monitor-gone', detail: expect.stringMatching(/is gone \(ECONNREFUSED\) and left no exit status/) }]);

    await writeFile(files.exitFile, JSON.stringify(EXIT));
    w = events(dead);
    await w.watch.begin();
    expect(w.got).toEqual([{ kind: 'exited', exit: EXIT }]);
  });
});
