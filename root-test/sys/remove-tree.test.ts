// removeTree against the real kernel (root: a mount inside the tree).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MNT_DETACH, mountAsync, umount2Async } from '../../src/sys/libc.js';
import { removeTree } from '../../src/sys/remove-tree.js';

let root: string;
const mounted: string[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), `crib-remove-tree-${process.pid}-`));
});
afterAll(async () => {
  for (const m of mounted.reverse()) await umount2Async(m, MNT_DETACH);
  rmSync(root, { recursive: true, force: true });
});

describe('removeTree (root)', () => {
  it('never deletes through a mount left inside: it fails naming the tree, and the mount keeps its files', async () => {
    const tree = join(root, 'tree');
    const inside = join(tree, 'a', 'mnt');
    mkdirSync(inside, { recursive: true });
    writeFileSync(join(tree, 'a', 'beside'), 'x');
    await mountAsync('tmpfs', inside, 'tmpfs', 0, 'size=1m');
    mounted.push(inside);
    writeFileSync(join(inside, 'not-ours'), 'kept\n');
    await expect(removeTree(tree)).rejects.toThrow(new RegExp(`remove ${tree}: rm exited with 1: .*skipping '${inside}', since it's on a different device`));
    expect(readFileSync(join(inside, 'not-ours'), 'utf8')).toBe('kept\n');
    expect(existsSync(join(tree, 'a', 'beside'))).toBe(false);
    // Once the mount is gone, the next try deletes the rest.
    await umount2Async(mounted.pop()!);
    await removeTree(tree);
    expect(existsSync(tree)).toBe(false);
  });
});
