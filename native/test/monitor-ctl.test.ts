// crib-monitor's control socket (protocol 2, see native/monitor/main.c): status, the exit event
// pushed to every client, replies in order, the bounds on lines and clients; and what the monitor
// does when the disk is full: an exit file it cannot write is kept in memory and retried (the
// monitor neither spins nor leaves), a log it cannot write drops output cheaply and says so later.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { SmallTmpfs } from '../../test-support/small-tmpfs.js';
import { ControlClient, Harness, alive, waitFor } from './support/monitor-harness.js';

let h: Harness;
beforeAll(async () => { h = await Harness.create(); });
afterAll(async () => { await h?.cleanup(); });

/** utime + stime of a process, in clock ticks (1/100 s). */
async function cpuTicks(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function cpuOver(pid: number, ms: number): Promise<number> {
  const before = await cpuTicks(pid);
  await new Promise((r) => setTimeout(r, ms));
  return (await cpuTicks(pid)) - before;
}

const EXIT_SHAPE = {
  exitCode: expect.any(Number), signal: null, oomKilled: false,
  exitedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$/),
};

describe('crib-monitor control socket', () => {
  it('answers status, pushes the exit event to every client, then writes the exit file and goes', async () => {
    const c = await h.create({ args: ['sh', '-c', 'read x; exit 4'], stdin: true });
    const a = await c.control();
    const b = await c.control();
    expect(await a.send({ cmd: 'status' })).toEqual({
      ok: true, running: true, pid: c.sync.pid, exit: null, exitFilePersisted: false,
    });
    const attach = await h.attach(c);
    await c.start();
    attach.write('go\n');
    await waitFor('exit event on both clients', () => a.events.length === 1 && b.events.length === 1);
    const event = { event: 'exit', exit: { ...EXIT_SHAPE, exitCode: 4 } };
    expect(a.events[0]).toEqual(event);
    expect(b.events[0]).toEqual(a.events[0]);
    // The file says what the event said; then the monitor and its socket are gone.
    expect(await c.waitExit()).toEqual((a.events[0] as { exit: unknown }).exit);
    await waitFor('clients closed', () => a.closed && b.closed);
    await waitFor('monitor gone', () => !alive(c.sync.monitorPid!));
    expect(existsSync(c.ctlSocket)).toBe(false);
  });

  it('answers every command in order and refuses unknown or malformed ones by name', async () => {
    const c = await h.create({ args: ['sleep', '1000'] });
    const ctl = await c.control();
    const replies = await Promise.all([
      ctl.send({ cmd: 'status' }),
      ctl.send({ cmd: 'launch-missiles' }),
      ctl.send('{"cmd": "status", "nested": {"x": 1}}'),
      ctl.send('not json'),
      ctl.send({ cmd: 'resize', rows: 24, cols: 80 }),
      ctl.send({ cmd: 'resize', rows: 70000, cols: 80 }),
      ctl.send({ cmd: 'ack-exit' }),
      ctl.send({ cmd: 'status' }),
    ]);
    expect(replies).toEqual([
      expect.objectContaining({ ok: true, running: true }),
      { ok: false, error: 'unknown command' },
      { ok: false, error: expect.stringMatching(/^malformed command: nested values are not accepted/) },
      { ok: false, error: expect.stringMatching(/^malformed command: expected a JSON object/) },
      { ok: false, error: 'the process has no terminal to resize' },
      { ok: false, error: expect.stringContaining('0..65535') },
      { ok: false, error: 'the process has not exited' },
      expect.objectContaining({ ok: true, running: true }),
    ]);
    await h.runtime('delete', '--force', c.id);
    await c.waitExit();
  });

  it('closes a client that sends a line over 4 KiB, and a 17th client, but keeps the others', async () => {
    const c = await h.create({ args: ['sleep', '1000'] });
    const keeper = await c.control();
    const long = await c.control();
    long.sock.write('x'.repeat(5000));
    await waitFor('the long-line client closed', () => long.closed);
    expect(long.lines).toEqual([]);
    const more: ControlClient[] = [];
    for (let i = 0; i < 15; i++) more.push(await c.control());
    expect((await more[14]!.send({ cmd: 'status' })).ok).toBe(true);
    // 16 are connected (keeper + 15): one more is closed without a word.
    const extra = await c.control();
    await waitFor('the 17th client closed', () => extra.closed);
    expect(extra.lines).toEqual([]);
    expect((await keeper.send({ cmd: 'status' })).ok).toBe(true);
    for (const m of more) m.close();
    await h.runtime('delete', '--force', c.id);
    await c.waitExit();
  });

  it('serves a status request sent before the socket was read, byte by byte', async () => {
    const c = await h.create({ args: ['sleep', '1000'] });
    const sock = connect({ path: c.ctlSocket });
    await new Promise((r) => sock.once('connect', r));
    let got = '';
    sock.on('data', (d) => { got += d; });
    for (const ch of '{"cmd":"status"}\n') {
      sock.write(ch);
      await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor('reply', () => got.endsWith('\n'));
    expect(JSON.parse(got)).toMatchObject({ ok: true, running: true, pid: c.sync.pid });
    sock.destroy();
    await h.runtime('delete', '--force', c.id);
    await c.waitExit();
  });
});

describe('crib-monitor on a full disk', () => {
  let disk: SmallTmpfs;
  beforeAll(async () => { disk = await SmallTmpfs.mount(join(h.dir, 'disk')); });
  afterAll(async () => { await disk?.unmount(); });

  it('keeps an exit it cannot write, answers status without spinning, and writes it once there is room', async () => {
    const exitFile = join(disk.dir, 'exit-1');
    const c = await h.create({ args: ['sh', '-c', 'read x; exit 9'], stdin: true, exitFile });
    const ctl = await c.control();
    const attach = await h.attach(c);
    await c.start();
    await disk.fill();
    attach.write('go\n');
    await waitFor('exit event', () => ctl.events.length === 1);
    const exit = (ctl.events[0] as { exit: Record<string, unknown> }).exit;
    expect(exit).toEqual({ ...EXIT_SHAPE, exitCode: 9 });
    expect(await ctl.send({ cmd: 'status' })).toEqual({ ok: true, running: false, pid: c.sync.pid, exit, exitFilePersisted: false });
    // It stays, idle, retrying now and then.
    expect(await cpuOver(c.sync.monitorPid!, 2500)).toBeLessThanOrEqual(5);
    expect(alive(c.sync.monitorPid!)).toBe(true);
    expect(existsSync(exitFile)).toBe(false);
    await disk.free();
    // The retry (1 s, 2 s, 4 s ... at most 10 s apart) writes the exit as it was when it happened.
    expect(await c.waitExit(15_000)).toEqual(exit);
    await waitFor('monitor gone', () => !alive(c.sync.monitorPid!));
    expect(existsSync(c.ctlSocket)).toBe(false);
  }, 40_000);

  it('leaves at once when the daemon acknowledges an exit it could not write', async () => {
    const exitFile = join(disk.dir, 'exit-2');
    const c = await h.create({ args: ['sh', '-c', 'read x; exit 2'], stdin: true, exitFile });
    const ctl = await c.control();
    const attach = await h.attach(c);
    await c.start();
    await disk.fill();
    attach.write('go\n');
    await waitFor('exit event', () => ctl.events.length === 1);
    expect(await ctl.send({ cmd: 'ack-exit' })).toEqual({ ok: true });
    await waitFor('monitor gone', () => !alive(c.sync.monitorPid!));
    expect(existsSync(exitFile)).toBe(false);
    expect(existsSync(c.ctlSocket)).toBe(false);
    await disk.free();
  });

  it('gives up on an exit file whose directory is gone: nobody is left to read it', async () => {
    const sub = join(disk.dir, 'gone');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(sub);
    const c = await h.create({ args: ['sh', '-c', 'read x; exit 0'], stdin: true, exitFile: join(sub, 'exit') });
    const attach = await h.attach(c);
    await c.start();
    await rm(sub, { recursive: true });
    attach.write('go\n');
    await waitFor('monitor gone', () => !alive(c.sync.monitorPid!));
  });

  it('drops log output cheaply while the log disk is full, keeps the container running, and says what it dropped', async () => {
    // A disk of its own, far larger than the container can write in this test's time (about
    // 1 MiB/s here): on the 1 MiB disk a slow moment before fill() let the log fill it by itself,
    // and free() then freed nothing.
    const logDisk = await SmallTmpfs.mount(join(h.dir, 'log-disk'), '64m');
    try {
      await dropsLogOutputWhileFull(logDisk);
    } finally {
      await logDisk.unmount();
    }
  }, 40_000);
});

async function dropsLogOutputWhileFull(disk: SmallTmpfs): Promise<void> {
  const logPath = join(disk.dir, 'chatty.log');
  // Every echo is a write of its own: the worst case for a monitor that works per line.
  const c = await h.create({ args: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo "line $i"; done'], logPath });
  await c.start();
  await waitFor('first lines', async () => existsSync(logPath) && (await c.log()).length > 10);
  await disk.fill();
  const ticks = await cpuOver(c.sync.monitorPid!, 3000);
  console.log(`monitor CPU while the log disk is full: ${ticks} ticks in 3 s`);
  expect(ticks).toBeLessThanOrEqual(30); // at most 10% of a CPU
  expect(alive(c.sync.pid)).toBe(true);
  await disk.free();
  const recs = await waitFor('logging resumed after the note', async () => {
    const r = await c.log();
    const note = r.findIndex((x) => x.content.startsWith('crib-monitor: dropped '));
    return note >= 0 && r.length > note + 10 ? r : undefined;
  }, 10_000);
  const note = recs.find((x) => x.content.startsWith('crib-monitor: dropped '))!;
  expect(note).toMatchObject({ stream: 'stderr', tag: 'F' });
  expect(note.content).toMatch(/^crib-monitor: dropped \d+ bytes of output: writing the log file failed: No space left on device$/);
  const dropped = Number(/dropped (\d+) bytes/.exec(note.content)![1]);
  expect(dropped).toBeGreaterThan(0);
  // Lines after the note are whole lines, numbered on from where the container got to.
  const after = recs.slice(recs.indexOf(note) + 1).filter((r) => r.stream === 'stdout');
  expect(after.every((r) => r.tag === 'F' && /^line \d+$/.test(r.content))).toBe(true);
  const numbers = after.map((r) => Number(r.content.slice(5)));
  expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
  await h.runtime('kill', c.id, 'KILL');
  await c.waitExit();
}
