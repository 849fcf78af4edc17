import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withMemoryFile } from './memory-file.js';

describe('withMemoryFile', () => {
  it('gives a path that reads back the contents while the call runs, and is gone after', async () => {
    const contents = JSON.stringify({ args: ['sh', '-c', 'echo ü'], env: ['A=1'] });
    let seen = '';
    const path = await withMemoryFile('crib-test-process', contents, async (p) => {
      expect(p).toMatch(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      seen = readFileSync(p, 'utf8');
      // Opened anew each time, from the start: a second reader sees the whole file too.
      expect(readFileSync(p, 'utf8')).toBe(contents);
      return p;
    });
    expect(seen).toBe(contents);
    expect(existsSync(path)).toBe(false);
  });

  it('holds a file larger than one write and an empty one', async () => {
    const big = 'x'.repeat(3 << 20);
    expect(await withMemoryFile('crib-test-big', big, async (p) => readFileSync(p, 'utf8').length)).toBe(big.length);
    expect(await withMemoryFile('crib-test-empty', '', async (p) => readFileSync(p, 'utf8'))).toBe('');
  });

  it('closes the file when the call fails, and passes the failure on', async () => {
    let path = '';
    await expect(withMemoryFile('crib-test-fail', 'x', async (p) => {
      path = p;
      throw new Error('the helper failed');
    })).rejects.toThrow('the helper failed');
    expect(existsSync(path)).toBe(false);
  });
});
