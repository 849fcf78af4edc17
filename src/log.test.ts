// The daemon's JSON logger, through a sink that keeps its lines (the bounding of long strings is
// in truncate.test.ts).
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { createLogger, fdSink, type LevelName } from './log.js';

function capture(level: LevelName = 'info') {
  const lines: string[] = [];
  const logger = createLogger({ level, sink: (line) => lines.push(line) });
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, parsed };
}

describe('the daemon logger', () => {
  it('writes one JSON line per call: level, time, svc, bindings, fields, msg, in that order', () => {
    const { logger, lines } = capture();
    logger.child({ pod: 'p1' }).child({ container: 'c1' }).info({ method: 'StartContainer', ms: 3 }, 'started');
    logger.warn('plain');
    logger.error({ msg: 'from the fields', level: 'not this', code: 5 });
    expect(lines).toHaveLength(3);
    expect(lines.every((l) => l.endsWith('}\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(first!)).toEqual(['level', 'time', 'svc', 'pod', 'container', 'method', 'ms', 'msg']);
    expect(first).toMatchObject({ level: 30, svc: 'crib', pod: 'p1', container: 'c1', method: 'StartContainer', ms: 3, msg: 'started' });
    expect(new Date(first!.time as string).toISOString()).toBe(first!.time);
    expect(second).toMatchObject({ level: 40, msg: 'plain' });
    expect(JSON.parse(lines[2]!)).toEqual({ level: 50, time: expect.any(String), svc: 'crib', code: 5, msg: 'from the fields' });
  });

  it('stamps lines without Date\'s formatting, whose first use costs an idle daemon 0.8 MiB (time.ts isoTime)', () => {
    const toIso = vi.spyOn(Date.prototype, 'toISOString');
    try {
      const { logger, parsed } = capture();
      const before = Date.now();
      logger.info('stamped');
      expect(toIso).not.toHaveBeenCalled();
      const at = Date.parse(parsed()[0]!.time as string);
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(Date.now());
    } finally {
      toIso.mockRestore();
    }
  });

  it('writes only the levels enabled; a family shares one level, and an unknown level is refused', () => {
    const { logger, parsed } = capture('warn');
    const child = logger.child({ pod: 'p' });
    child.info('no');
    child.warn('yes');
    expect(child.isLevelEnabled('debug')).toBe(false);
    logger.level = 'debug';
    child.debug('now yes');
    expect(parsed().map((l) => l.msg)).toEqual(['yes', 'now yes']);
    expect(() => {
      logger.level = 'loud' as LevelName;
    }).toThrow('log level loud: must be one of trace, debug, info, warn, error, fatal, silent');
    logger.level = 'silent';
    child.fatal('nothing');
    expect(parsed()).toHaveLength(2);
  });

  it('serialises errors with their class, message, stack, own fields and causes', () => {
    const { logger, parsed } = capture();
    const cause = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: '/x' });
    class PullError extends Error {}
    logger.error({ err: new PullError('pull failed', { cause }) }, 'pull');
    logger.error(new TypeError('bad'), 'as first argument');
    const [a, b] = parsed();
    expect(a!.err).toMatchObject({
      type: 'PullError', message: 'pull failed', stack: expect.stringContaining('pull failed'),
      cause: { type: 'Error', message: 'EACCES: permission denied', code: 'EACCES', path: '/x' },
    });
    expect(b!.err).toMatchObject({ type: 'TypeError', message: 'bad' });
  });

  it('redacts credentials at the top, one level down, and in headers', () => {
    const { logger, lines } = capture();
    logger.info({
      auth: { username: 'u', password: 'hunter2' }, password: 'hunter2',
      registry: { identityToken: 'hunter2', registryToken: 'hunter2', headers: { authorization: 'Bearer hunter2', accept: 'x' } },
      headers: { authorization: 'Basic hunter2' },
    }, 'pull');
    logger.child({ authorization: 'hunter2' }).info('bound');
    logger.warn({ err: Object.assign(new Error('denied'), { password: 'hunter2' }) }, 'failed');
    expect(lines.join('')).not.toContain('hunter2');
    expect(JSON.parse(lines[0]!).registry.headers.accept).toBe('x');
  });

  it('writes bigints as digits and cuts cycles instead of failing', () => {
    const { logger, parsed } = capture();
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    class Holder {
      constructor(readonly inner: unknown) {}
    }
    logger.info({ bytes: 2n ** 70n, held: new Holder(loop) }, 'odd values');
    const [line] = parsed();
    expect(line!.bytes).toBe('1180591620717411303424');
    expect(line!.held).toEqual({ inner: { name: 'loop', self: '[Circular]' } });
  });
});

/** A FIFO with non-blocking ends that nobody reads until the test does: `read()` takes what it
 * holds now. */
function withStalledFifo(fn: (writeEnd: number, read: () => string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'crib-log-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // Read end first (non-blocking, so the open does not wait), then a non-blocking write end.
  const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeEnd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(1 << 20);
  try {
    fn(writeEnd, () => buf.toString('utf8', 0, readSync(readEnd, buf)));
  } finally {
    closeSync(writeEnd);
    closeSync(readEnd);
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('fdSink', () => {
  it('drops a line a stalled reader does not take within its patience, and says so with the next one', () => {
    withStalledFifo((writeEnd, read) => {
      const sink = fdSink(writeEnd, 50);
      const line = `{"level":30,"msg":"${'x'.repeat(1000)}"}\n`;
      const started = Date.now();
      // The pipe holds 64 KiB: the 70th line finds it full.
      for (let i = 0; i < 70; i++) sink(line);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(read().length).toBeGreaterThan(60_000);
      sink('{"level":30,"msg":"after"}\n');
      const next = read();
      const last = JSON.parse(next.slice(next.lastIndexOf('{"level"')));
      expect(last.msg).toBe('after');
      expect(last.droppedBefore).toBeGreaterThan(0);
    });
  });

  it('ends a line cut mid-way before the next one, which stays whole on a line of its own', () => {
    withStalledFifo((writeEnd, read) => {
      const sink = fdSink(writeEnd, 20);
      // Longer than PIPE_BUF (4096): a full pipe takes the first part of a line and refuses the rest.
      const line = `{"level":30,"msg":"${'x'.repeat(10_000)}"}\n`;
      for (let i = 0; i < 8; i++) sink(line);
      let text = read();
      expect(text.endsWith('\n')).toBe(false); // the pipe holds the start of a dropped line
      sink('{"level":30,"msg":"after"}\n');
      text += read();
      const lines = text.split('\n').filter(Boolean);
      const cut = lines.filter((l) => { try { JSON.parse(l); return false; } catch { return true; } });
      expect(cut).toHaveLength(1);
      const last = JSON.parse(lines[lines.length - 1]!);
      expect(last.msg).toBe('after');
      expect(last.droppedBefore).toBeGreaterThan(0);
    });
  });
});
