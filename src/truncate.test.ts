import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';
import { boundStrings, truncateText } from './truncate.js';

describe('truncateText', () => {
  it('keeps short text and cuts long text to its head with the full size', () => {
    expect(truncateText('hello')).toBe('hello');
    expect(truncateText('x'.repeat(1024))).toBe('x'.repeat(1024));
    const cut = truncateText('a'.repeat(1024 * 1024));
    expect(cut).toBe(`${'a'.repeat(1024)}… (1048576 bytes)`);
  });

  it('never splits a multi-byte character', () => {
    const cut = truncateText('é'.repeat(1000), 11);
    expect(cut).toBe(`${'é'.repeat(5)}… (2000 bytes)`);
  });
});

describe('boundStrings', () => {
  it('bounds strings, arrays, wide objects and deep nesting', () => {
    const deep = { a: { b: { c: { d: { e: { f: { g: 'deep' } } } } } } };
    const bounded = boundStrings({ s: 'x'.repeat(5000), list: Array.from({ length: 100 }, (_, i) => i), deep }, 100) as Record<string, any>;
    expect(bounded.s).toBe(`${'x'.repeat(100)}… (5000 bytes)`);
    expect(bounded.list).toHaveLength(65);
    expect(bounded.list[64]).toBe('… (36 more items)');
    expect(JSON.stringify(bounded.deep)).toContain('[object]');
    const err = new Error('e');
    expect((boundStrings({ err }) as { err: unknown }).err).toBe(err);
  });
});

describe('the daemon logger', () => {
  function capture() {
    const lines: string[] = [];
    return { logger: createLogger({ level: 'info', sink: (line) => lines.push(line) }), lines };
  }

  it('cannot be made to write a huge line by a message, a field or an error echoing input', () => {
    const { logger, lines } = capture();
    const huge = `docker.io/library/${'a'.repeat(1024 * 1024)}:latest`;
    logger.info({ method: 'runtime.v1.ImageService/PullImage', err: `image "${huge}" is not valid`, image: huge }, `pull ${huge}`);
    logger.child({ image: huge }).warn({ err: new Error(`no such image ${huge}`) }, 'failed');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.length).toBeLessThan(16 * 1024);
      expect(line).toContain('(1048601 bytes)');
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(JSON.parse(lines[1]!).err.type).toBe('Error');
  });

  it('still redacts credentials', () => {
    const { logger, lines } = capture();
    logger.info({ auth: { password: 'hunter2' }, req: { password: 'hunter2' } }, 'pull');
    expect(lines[0]).not.toContain('hunter2');
  });
});
