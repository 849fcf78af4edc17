// crib-monitor's attach socket and terminal: fan-out to several clients, stdin from a client,
// --stdin-once, a client that does not read, and --terminal with resize through the control socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stat } from 'node:fs/promises';
import { Harness, waitFor } from './support/monitor-harness.js';

let h: Harness;
beforeAll(async () => { h = await Harness.create(); });
afterAll(async () => { await h?.cleanup(); });

describe('crib-monitor attach', () => {
  it('fans output out to two clients and forwards stdin from either to the container', async () => {
    const c = await h.create({ args: ['cat'], stdin: true });
    expect((await stat(c.attachSocket)).mode & 0o777).toBe(0o700);
    const a = await h.attach(c);
    const b = await h.attach(c);
    await c.start();
    a.write('hello from a\n');
    await waitFor('echo to both', () =>
      a.text(1) === 'hello from a\n' && b.text(1) === 'hello from a\n');
    // a stops sending; without --stdin-once the container's stdin stays open for b.
    a.end();
    b.write('hello from b\n');
    await waitFor('second echo to both', () =>
      a.text(1).endsWith('hello from b\n') && b.text(1).endsWith('hello from b\n'));
    expect(a.text(2)).toBe('');
    const log = await c.log();
    expect(log.map((r) => [r.stream, r.tag, r.content])).toEqual([
      ['stdout', 'F', 'hello from a'], ['stdout', 'F', 'hello from b']]);
    await h.runtime('kill', c.id, 'KILL');
    await c.waitExit();
    await waitFor('clients closed at exit', () => a.closed && b.closed);
  });

  it('tags stderr frames with stream 2', async () => {
    const c = await h.create({ args: ['sh', '-c', 'read x; echo out; echo err >&2'], stdin: true });
    const a = await h.attach(c);
    await c.start();
    a.write('go\n');
    await c.waitExit();
    await waitFor('close', () => a.closed);
    expect(a.text(1)).toBe('out\n');
    expect(a.text(2)).toBe('err\n');
  });

  it('closes the container stdin when the first client detaches with --stdin-once', async () => {
    const c = await h.create({ args: ['sh', '-c', 'cat; echo cat-done'], stdin: true, stdinOnce: true });
    const a = await h.attach(c);
    const b = await h.attach(c);
    await c.start();
    a.write('once\n');
    await waitFor('echo', () => b.text(1) === 'once\n');
    a.end();
    expect(await c.waitExit()).toMatchObject({ exitCode: 0 });
    await waitFor('b sees the end', () => b.closed);
    expect(b.text(1)).toBe('once\ncat-done\n');
  });

  it('disconnects a client that does not read instead of stalling the container or others', async () => {
    // The container echoes what the fast client sends, one 64 KiB line at a time, so the fast
    // client is never far behind while the paused one falls 2.5 MiB behind (over the 1 MiB queue
    // the monitor keeps per client, plus the socket buffers).
    const c = await h.create({ args: ['cat'], stdin: true });
    const slow = await h.attach(c);
    slow.sock.pause();
    const fast = await h.attach(c);
    await c.start();
    const line = `${'a'.repeat(65535)}\n`;
    for (let i = 1; i <= 40; i++) {
      fast.write(line);
      await waitFor(`echo ${i}`, () => fast.text(1).length === i * line.length);
    }
    slow.sock.resume();
    await waitFor('slow client disconnected', () => slow.closed);
    expect(slow.text(1).length).toBeLessThan(40 * line.length);
    expect(fast.closed).toBe(false);
    expect((await c.log()).length).toBe(40 * 4); // each 64 KiB line: P,P,P,F
    await h.runtime('kill', c.id, 'KILL');
    await c.waitExit();
  });
});

describe('crib-monitor --terminal', () => {
  it('gives the container a tty and resizes it through the control socket', async () => {
    const c = await h.create({
      args: ['sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo isatty; read x; stty size; read y; stty size; echo got:$y'],
      terminal: true,
      stdin: true,
    });
    expect(c.sync.pid).toBeGreaterThan(0);
    const a = await h.attach(c);
    await c.start();
    await waitFor('isatty', () => a.text(1).includes('isatty'));
    // The resize is answered before the input that makes the container look is sent.
    expect(await c.ctl({ cmd: 'resize', rows: 30, cols: 90 })).toEqual({ ok: true });
    a.write('one\n');
    await waitFor('first size', () => a.text(1).includes('30 90'), 20_000);
    expect(await c.ctl({ cmd: 'resize', rows: 50, cols: 132 })).toEqual({ ok: true });
    a.write('two\n');
    await c.waitExit();
    await waitFor('close', () => a.closed);
    const out = a.text(1).replace(/\r/g, '');
    expect(out).toContain('isatty\n');
    expect(out).toContain('one\n30 90\n');
    expect(out).toContain('two\n50 132\ngot:two\n');
    const log = (await c.log()).map((r) => r.content.replace(/\r$/, ''));
    expect(log).toContain('isatty');
    expect(log).toContain('50 132');
  });
});
