import { describe, expect, it } from 'vitest';
import { spawnOnThread } from './spawn-thread.js';

describe('spawnOnThread', () => {
  it('gives the whole stdout and stderr and the exit code of the command', async () => {
    const big = 200_000; // more than one pipe buffer: read to the end, not to the first chunk
    const r = await spawnOnThread('/bin/sh', ['-c', `head -c ${big} /dev/zero | tr '\\0' x; echo oops >&2; exit 3`]);
    expect(r.stdout).toBe('x'.repeat(big));
    expect(r.stderr).toBe('oops\n');
    expect(r.code).toBe(3);
    expect(r.error).toBeUndefined();
  });

  it('runs calls concurrently and answers each with its own result', async () => {
    const rs = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((n) => spawnOnThread('/bin/sh', ['-c', `echo ${n}; exit ${n}`])));
    expect(rs.map((r) => [r.stdout, r.code])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((n) => [`${n}\n`, n]));
  });

  it('reports a command that cannot be started as an error naming it', async () => {
    const r = await spawnOnThread('/nonexistent/crib-no-such-binary', []);
    expect(r.code).toBeNull();
    expect(r.error?.message).toMatch(/crib-no-such-binary.*ENOENT/);
  });
});
