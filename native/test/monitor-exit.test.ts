// crib-monitor's exit handling: exit codes (0, 3, 128+9), OOM detection through the memory
// cgroup, surviving the death of the process that started it, and its memory footprint.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, alive, waitFor } from './support/monitor-harness.js';

let h: Harness;
beforeAll(async () => { h = await Harness.create(); });
afterAll(async () => { await h?.cleanup(); });

async function procStatus(pid: number): Promise<Record<string, string>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Object.fromEntries(text.split('\n').filter(Boolean).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()];
  }));
}

/** Gone, or a zombie nobody reaped yet (its parent is outside our control). */
async function monitorGone(pid: number): Promise<boolean> {
  if (!alive(pid)) return true;
  const st = await procStatus(pid).catch(() => undefined);
  return st === undefined || st.State.startsWith('Z');
}

describe('crib-monitor exit file', () => {
  it('records exit code 0 with no signal and an RFC3339Nano time, then the monitor exits', async () => {
    const c = await h.create({ args: ['true'] });
    await c.start();
    const exit = await c.waitExit();
    expect(exit).toMatchObject({ exitCode: 0, signal: null, oomKilled: false });
    expect(exit.exitedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$/);
    expect(Math.abs(Date.parse(exit.exitedAt) - Date.now())).toBeLessThan(60_000);
    await waitFor('monitor exit', () => monitorGone(c.sync.monitorPid!));
    // The attach and control sockets go away with the monitor.
    expect(existsSync(c.attachSocket)).toBe(false);
    expect(existsSync(c.ctlSocket)).toBe(false);
  });

  it('records exit code 3', async () => {
    const c = await h.create({ args: ['sh', '-c', 'exit 3'] });
    await c.start();
    expect(await c.waitExit()).toMatchObject({ exitCode: 3, signal: null, oomKilled: false });
  });

  it('records 137 and signal 9 for a container killed with SIGKILL', async () => {
    const c = await h.create({ args: ['sleep', '1000'] });
    await c.start();
    await h.runtime('kill', c.id, 'KILL');
    expect(await c.waitExit()).toMatchObject({ exitCode: 137, signal: 9, oomKilled: false });
  });

  it('reports oomKilled for a container that exceeds its 32 MiB memory limit', async () => {
    const c = await h.create({
      args: ['sh', '-c', 'dd if=/dev/zero of=/dev/null bs=128M count=1; echo "dd status $?"'],
      memoryLimitBytes: 32 * 1024 * 1024,
    });
    expect(c.sync.pid).toBeGreaterThan(0);
    await c.start();
    const exit = await c.waitExit();
    expect(exit.oomKilled).toBe(true);
    // dd was the victim; sh reported it and exited normally.
    const log = await c.log();
    expect(log.some((r) => r.content === 'dd status 137')).toBe(true);
  });

  it('does not report oomKilled for a container under its memory limit', async () => {
    const c = await h.create({
      args: ['sh', '-c', 'dd if=/dev/zero of=/dev/null bs=1M count=4'],
      memoryLimitBytes: 32 * 1024 * 1024,
    });
    await c.start();
    expect(await c.waitExit()).toMatchObject({ exitCode: 0, oomKilled: false });
  });

  it('keeps running and logging after the process that started it is killed', async () => {
    const c = await h.create({
      args: ['sh', '-c', 'echo started; while true; do echo tick; sleep 0.05; done'],
      viaIntermediate: true,
    });
    const monitorPid = c.sync.monitorPid!;
    expect(c.sync.pid).toBeGreaterThan(0);
    process.kill(c.intermediatePid!, 'SIGKILL');
    await waitFor('intermediate gone', () => !alive(c.intermediatePid!));
    const st = await procStatus(monitorPid);
    expect(Number(st.PPid)).not.toBe(c.intermediatePid);
    expect(Number(st.PPid)).not.toBe(process.pid);
    // Its own session: a signal to the starter's process group cannot reach it.
    const sid = async (pid: number | string) =>
      Number((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')[3]);
    expect(await sid(monitorPid)).not.toBe(await sid('self'));
    await c.start();
    await waitFor('ticks after the starter died', async () =>
      existsSync(c.logPath) && (await c.log()).filter((r) => r.content === 'tick').length >= 3);
    expect(alive(monitorPid)).toBe(true);
    await h.runtime('kill', c.id, 'KILL');
    expect(await c.waitExit()).toMatchObject({ exitCode: 137, signal: 9 });
  });

  it('reports the runtime\'s error on the sync fd when create fails, and exits', async () => {
    const c = await h.create({ args: ['/bin/no-such-binary'] });
    expect(c.sync.pid).toBe(-1);
    // runc checks the executable at create; its stderr is the message.
    expect(c.sync.message).toMatch(/no-such-binary/);
    expect(c.monitorExit).toBe(0); // the detached monitor reported; its starter had succeeded
    expect(existsSync(c.attachSocket)).toBe(false);
    expect(existsSync(c.ctlSocket)).toBe(false);
    expect(existsSync(c.exitFile)).toBe(false);
  });

  it('undoes the create when its caller is gone before the sync line: no parked process, monitor or runtime state', async () => {
    // A daemon killed while the monitor starts never learns the pid, and a daemon restarted
    // meanwhile may look for the runtime's state before it exists: the monitor is the only one
    // left who knows what it made.
    const c = await h.create({ args: ['sleep', '1000'], closeSync: true });
    expect(c.monitorExit).toBe(0);
    const monitors = async () => {
      const { readdir } = await import('node:fs/promises');
      const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e));
      const cmds = await Promise.all(pids.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
      return cmds.filter((cmd) => cmd.includes('crib-monitor') && cmd.includes(c.id)).length;
    };
    await waitFor('the monitor gone', async () => (await monitors()) === 0, 15_000);
    await expect(h.runtime('state', c.id)).rejects.toThrow();
    expect(existsSync(join(h.runtimeRoot, c.id))).toBe(false);
    expect(existsSync(c.attachSocket)).toBe(false);
    expect(existsSync(c.ctlSocket)).toBe(false);
    expect(existsSync(c.exitFile)).toBe(false);
  });

  it('does not keep file descriptors it inherited from its caller', async () => {
    const c = await h.create({ args: ['sleep', '1000'], shellPrefix: 'exec 7</dev/zero; ' });
    const dir = `/proc/${c.sync.monitorPid}/fd`;
    const { readdir, readlink } = await import('node:fs/promises');
    // The sync fd may be closing while we look: an fd gone between readdir and readlink is skipped.
    const links = (await Promise.all((await readdir(dir)).map(async (fd) =>
      [fd, await readlink(`${dir}/${fd}`).catch(() => '')]))).filter(([, l]) => l !== '');
    expect(links.filter(([, l]) => l === '/dev/zero')).toEqual([]);
    // Its stdio is /dev/null: a caller waiting for its pipes to close is not held up.
    expect(links.filter(([fd]) => Number(fd) <= 2).map(([, l]) => l)).toEqual(['/dev/null', '/dev/null', '/dev/null']);
    await h.runtime('delete', '--force', c.id);
    expect(await c.waitExit()).toMatchObject({ exitCode: 137 });
  });

  it('stays under 1 MiB of RSS while monitoring a container (statically linked)', async () => {
    const c = await h.create({ args: ['sh', '-c', 'while true; do echo tick; sleep 0.05; done'] });
    await c.start();
    const client = await h.attach(c);
    await waitFor('output', async () => client.text().length > 10 && (await c.log()).length > 3);
    const st = await procStatus(c.sync.monitorPid!);
    const kb = (k: string) => Number(st[k].split(' ')[0]);
    // Pss charges shared pages (libc) pro rata: closer to what one more monitor really costs.
    const rollup = await readFile(`/proc/${c.sync.monitorPid}/smaps_rollup`, 'utf8');
    const pss = Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1]);
    console.log(`crib-monitor VmRSS ${kb('VmRSS')} kB (RssAnon ${kb('RssAnon')} kB, ` +
      `RssFile ${kb('RssFile')} kB), Pss ${pss} kB`);
    expect(kb('VmRSS')).toBeLessThan(1024);
    client.destroy();
    await h.runtime('kill', c.id, 'KILL');
    await c.waitExit();
  });
});
