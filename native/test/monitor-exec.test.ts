// crib-monitor's streaming exec mode (`crib-monitor exec`): one exec'd process served on an
// attach socket like a container, with its exit code in an exit file; --wait-attach makes sure the
// first client sees all of its output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Harness, waitFor, type Container } from './support/monitor-harness.js';

let h: Harness;
let c: Container;
beforeAll(async () => {
  h = await Harness.create();
  c = await h.create({ args: ['sleep', '1000'] });
  await c.start();
});
afterAll(async () => { await h?.cleanup(); });

describe('crib-monitor exec', () => {
  it('streams output from the start, forwards stdin and records the exit code', async () => {
    const s = await h.exec(c, ['sh', '-c', 'echo hi; echo warn >&2; read x; echo got:$x; exit 5'],
      { stdin: true, waitAttach: true });
    expect(s.sync.pid).toBeGreaterThan(0);
    const a = s.client!;
    await waitFor('first output', () => a.text(1) === 'hi\n' && a.text(2) === 'warn\n');
    a.write('yo\n');
    expect(await s.waitExit()).toMatchObject({ exitCode: 5, signal: null });
    await waitFor('closed', () => a.closed);
    expect(a.text(1)).toBe('hi\ngot:yo\n');
    expect(existsSync(s.attachSocket)).toBe(false);
  });

  it('runs the process on a tty with --terminal and resizes it', async () => {
    const s = await h.exec(c, ['sh', '-c', '[ -t 0 ] && echo isatty; read x; stty size'],
      { terminal: true, stdin: true, waitAttach: true });
    expect(s.sync.pid).toBeGreaterThan(0);
    const a = s.client!;
    await waitFor('isatty', () => a.text(1).includes('isatty'));
    expect(await s.ctl({ cmd: 'resize', rows: 24, cols: 101 })).toEqual({ ok: true });
    a.write('\n');
    expect(await s.waitExit()).toMatchObject({ exitCode: 0 });
    await waitFor('closed', () => a.closed);
    expect(a.text(1).replace(/\r/g, '')).toContain('24 101\n');
  });

  it('keeps all output of a short tty exec whose client typed before the process ran', async () => {
    // crictl exec -it under a non-terminal stdin sends a byte at once; the tty echoes it.
    for (let i = 0; i < 5; i++) {
      const s = await h.exec(c, ['echo', `hello-${i}`], { terminal: true, stdin: true, waitAttach: true });
      s.client!.write('\0');
      expect(await s.waitExit()).toMatchObject({ exitCode: 0 });
      await waitFor('closed', () => s.client!.closed);
      expect(s.client!.text(1)).toContain(`hello-${i}\r\n`);
    }
  });

  it('reports the runtime error for a process that cannot run', async () => {
    const s = await h.exec(c, ['/bin/no-such-tool'], { waitAttach: true });
    expect(s.sync.pid).toBe(-1);
    expect(s.sync.message).toMatch(/no-such-tool/);
  });
});
