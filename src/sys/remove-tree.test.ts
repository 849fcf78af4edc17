// removeTree against real files: what fs.rm could not delete, and at what cost to this process.
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeDeepTree } from '../../test-support/deep-tree.js';
import { removeTree } from './remove-tree.js';

describe('removeTree', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'crib-remove-tree-'));
  });
  afterEach(async () => {
    await removeTree(base);
  });

  it('deletes dirs, files and symlinks, never what a symlink points to; a missing path is fine', async () => {
    const outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'kept\n');
    const tree = join(base, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    writeFileSync(join(tree, 'a', 'b', 'file'), 'x');
    symlinkSync(outside, join(tree, 'a', 'to-outside'));
    symlinkSync(join(outside, 'keep'), join(tree, 'link-to-file'));
    await removeTree(tree);
    expect(existsSync(tree)).toBe(false);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('kept\n');
    await removeTree(tree);
    await removeTree(join(base, 'never-was', 'below'));
  });

  it('deletes a tree deeper than PATH_MAX, which fs.rm cannot', async () => {
    const deep = join(base, 'deep');
    makeDeepTree(deep);
    await expect(rm(deep, { recursive: true, force: true })).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    await removeTree(deep);
    expect(existsSync(deep)).toBe(false);
  });

  it('leaves the walk to another process: 20,000 files cost this one next to no CPU', async () => {
    // fs.rm walks on this process's thread pool, each file a callback on its event loop: about
    // half a second of its CPU for these files on this project's 2-core machine; rm's spawn and
    // reaping, a few milliseconds. The bound is far from both.
    const tree = join(base, 'many');
    mkdirSync(tree);
    for (let i = 0; i < 20_000; i++) writeFileSync(join(tree, `f${i}`), '');
    const before = process.cpuUsage();
    await removeTree(tree);
    const used = process.cpuUsage(before);
    expect(existsSync(tree)).toBe(false);
    expect((used.user + used.system) / 1000).toBeLessThan(100);
  });
});
