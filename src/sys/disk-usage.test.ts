// diskUsage over real trees (unprivileged), against du's figures: every inode counted once,
// symlinks not followed, and trees deeper than PATH_MAX and than the walk keeps open counted in
// full; the bound on walks at once.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDeepTree } from '../../test-support/deep-tree.js';
import { boundedWalks, diskUsage } from './disk-usage.js';
import { treeUsage, type TreeUsage } from './libc.js';
import { removeTree } from './remove-tree.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'crib-du-'));
});
afterAll(async () => {
  await removeTree(root); // a tree deeper than PATH_MAX is beyond fs.rm
});

/** du's own figures for `paths` together (-x: one filesystem; hardlinks counted once over all). */
function du(...paths: string[]): { bytes: number; inodes: number } {
  const total = (args: string[]) => Number(/(\d+)\s+total/.exec(execFileSync('du', ['-scx', ...args, ...paths]).toString())![1]);
  return { bytes: total(['-B1']), inodes: total(['--inodes']) };
}

describe('diskUsage', () => {
  it('counts a wide and deep tree: every entry once, hardlinks once, symlinks not followed', async () => {
    const top = join(root, 'tree');
    for (let d = 0; d < 5; d++) {
      const dir = join(top, `d${d}`, 'sub');
      await mkdir(dir, { recursive: true });
      await Promise.all(Array.from({ length: 200 }, (_, f) => writeFile(join(dir, `f${f}`), 'x'.repeat(f * 100))));
    }
    await link(join(top, 'd0', 'sub', 'f0'), join(top, 'hard'));
    await symlink('/usr', join(top, 'usr'));
    const u = await diskUsage([top, join(root, 'missing')]);
    // top, 5 × (dN, sub, 200 files), the symlink; the hardlink is f0 again.
    expect(u.inodes).toBe(1 + 5 * 202 + 1);
    expect(u).toEqual(du(top));
  });

  it('counts an inode linked from two roots once', async () => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    await mkdir(a);
    await mkdir(b);
    await writeFile(join(a, 'f'), 'x'.repeat(10_000));
    await link(join(a, 'f'), join(b, 'f'));
    expect(await diskUsage([a, b])).toEqual(du(a, b));
    expect((await diskUsage([a, b])).inodes).toBe(3);
  });

  it('counts a missing root as empty, and a file root as itself', async () => {
    expect(await diskUsage(join(root, 'nope'))).toEqual({ bytes: 0, inodes: 0 });
    const f = join(root, 'file');
    await writeFile(f, 'x'.repeat(9000));
    expect(await diskUsage(f)).toEqual(du(f));
  });

  // The unit tier runs as nobody (deploy/test.sh): a directory without permissions is one the
  // walk cannot enter. Root may enter it anyway.
  it.skipIf(process.getuid?.() === 0)('throws the errno of a directory the walk cannot open, naming its root', async () => {
    const top = join(root, 'shut');
    await mkdir(join(top, 'inner'), { recursive: true });
    await chmod(join(top, 'inner'), 0);
    try {
      await expect(treeUsage([top], 8)).rejects.toMatchObject({ code: 'EACCES', path: top });
    } finally {
      await chmod(join(top, 'inner'), 0o755);
    }
  });

  // A container makes one with a loop of mkdir and cd in its writable layer. Reached by its whole
  // path, each entry below PATH_MAX (4096 bytes) failed the walk with ENAMETOOLONG, and with it
  // every container's stats in the same listing. 300 levels of 40-byte names: 12 KB of path, and
  // far more directories than a walk holds open, so the walk comes back up through closed ones;
  // every 25 levels, files beside the directory it went down, and one sibling directory, found
  // after coming back.
  it('counts a tree deeper than PATH_MAX in full', async () => {
    const top = join(root, 'deep');
    makeDeepTree(top, 300, (at, level) => {
      if (level % 25 !== 0) return;
      mkdirSync(`${at}/s`);
      writeFileSync(`${at}/s/f`, 'x');
      for (const f of ['a', 'b', 'c']) writeFileSync(`${at}/${f}`, String(level));
    });
    const u = await diskUsage(top);
    // top, 300 levels, 12 × (s, s/f, a, b, c), the bottom file.
    expect(u.inodes).toBe(1 + 300 + 12 * 5 + 1);
    expect(u).toEqual(du(top));
  });

  // A container may rename its directories while a walk is in them. Coming back up to a directory
  // it had closed (past the 64 it keeps open), the walk takes the ".." of the one it leaves only if
  // it is still that directory; a subtree moved to another parent meanwhile makes it find the
  // directory again by its names from the root. Moved back and forth between two parents while
  // walks run, the subtree may be counted twice or not at all, but no walk fails, and once it
  // stays put a walk counts it exactly.
  it('walks a tree whose deep subtree moves between parents meanwhile: never fails, exact once it stays', async () => {
    const top = join(root, 'moving');
    mkdirSync(join(top, 'x'), { recursive: true });
    mkdirSync(join(top, 'y'));
    makeDeepTree(join(top, 'x', 'sub'), 100, (at) => writeFileSync(`${at}/f`, 'x'));
    const sub = 1 + 100 + 100 + 1; // sub, 100 levels, a file beside each, the bottom file
    const places = [join(top, 'x', 'sub'), join(top, 'y', 'sub')];
    let moves = 0;
    for (let walks = 0; walks < 150; walks++) {
      let done = false;
      const walked = diskUsage(top).finally(() => (done = true));
      while (!done) {
        renameSync(places[moves % 2]!, places[(moves + 1) % 2]!);
        moves++;
        await new Promise((r) => setImmediate(r));
      }
      const u = await walked;
      expect(u.inodes).toBeGreaterThanOrEqual(3);
      expect(u.inodes).toBeLessThanOrEqual(3 + 2 * sub);
    }
    expect(moves).toBeGreaterThan(150);
    const still = await diskUsage(top);
    expect(still.inodes).toBe(3 + sub);
    expect(still).toEqual(du(top));
  });

  it('enters directories down to the depth it is given, counts the level below, and says so', async () => {
    const top = join(root, 'levels');
    await mkdir(join(top, 'a', 'b', 'c', 'd', 'e'), { recursive: true });
    await writeFile(join(top, 'a', 'b', 'c', 'f'), 'x');
    // top, a, b, c (level 3), c/f, and d counted but not entered.
    expect(await treeUsage([top], 3)).toMatchObject({ inodes: 6, tooDeep: true });
    expect(await treeUsage([top], 4)).toMatchObject({ inodes: 7, tooDeep: true });
    expect(await treeUsage([top], 5)).toMatchObject({ inodes: 7, tooDeep: false });
  });
});

describe('boundedWalks', () => {
  /** A walk each call of which ends when the test says (ends.get(root)()), or fails for 'fails'. */
  function heldWalk() {
    const started: string[] = [];
    const ends = new Map<string, () => void>();
    let running = 0;
    let peak = 0;
    const walk = async (roots: readonly string[]): Promise<TreeUsage> => {
      running++;
      peak = Math.max(peak, running);
      started.push(roots[0]!);
      await new Promise<void>((end) => ends.set(roots[0]!, end));
      running--;
      if (roots[0] === 'fails') throw new Error('walk failed');
      return { bytes: 1, inodes: 1, tooDeep: roots[0] === 'deep' };
    };
    return { walk, started, ends, peak: () => peak };
  }
  const turn = () => new Promise((r) => setImmediate(r));

  it('runs at most atOnce walks at a time, the rest in order, and a failed walk frees its slot', async () => {
    const h = heldWalk();
    const usage = boundedWalks(h.walk, 2, 2);
    const calls = ['fails', 'deep', 'c', 'd', 'e'].map((r) => usage(r));
    const failed = expect(calls[0]).rejects.toThrow('walk failed');
    await turn();
    expect(h.started).toEqual(['fails', 'deep']);
    h.ends.get('fails')!();
    await failed;
    await turn();
    expect(h.started).toEqual(['fails', 'deep', 'c']);
    h.ends.get('deep')!();
    expect(await calls[1]).toEqual({ bytes: 1, inodes: 1, tooDeep: true });
    await turn();
    h.ends.get('c')!();
    await turn();
    h.ends.get('d')!();
    await turn();
    h.ends.get('e')!();
    expect(await Promise.all(calls.slice(2))).toEqual([1, 2, 3].map(() => ({ bytes: 1, inodes: 1 })));
    expect(h.started).toEqual(['fails', 'deep', 'c', 'd', 'e']);
    expect(h.peak()).toBe(2);
  });

  // Two long walks (a layer of millions of files, ImageFsInfo's walk of every layer) held both
  // threads, and every other container's walk waited for them.
  it('keeps a thread for quick walks: a second long walk waits, and quick ones pass it', async () => {
    const h = heldWalk();
    const usage = boundedWalks(h.walk, 2, 1);
    const calls = [usage('long1'), usage('long2'), usage('q1', { quick: true }), usage('q2', { quick: true })];
    await turn();
    expect(h.started).toEqual(['long1', 'q1']);
    h.ends.get('q1')!();
    await turn();
    expect(h.started).toEqual(['long1', 'q1', 'q2']);
    h.ends.get('long1')!();
    await turn();
    expect(h.started).toEqual(['long1', 'q1', 'q2', 'long2']);
    h.ends.get('q2')!();
    h.ends.get('long2')!();
    await Promise.all(calls);
    expect(h.peak()).toBe(2);
  });

  // A listing that serves 100 stale results queues 100 walks behind itself; a layer never walked,
  // whose container's stats wait for it, must not wait for them.
  it('runs a walk someone waits for before walks behind served results, whenever it was asked for', async () => {
    const h = heldWalk();
    const usage = boundedWalks(h.walk, 1, 1);
    const calls = [
      usage('b1', { quick: true, behind: true }), usage('b2', { quick: true, behind: true }),
      usage('w1', { quick: true }), usage('b3', { quick: true, behind: true }), usage('w2', { quick: true }),
    ];
    await turn();
    expect(h.started).toEqual(['b1']);
    for (const [next, ran] of [['b1', 'w1'], ['w1', 'w2'], ['w2', 'b2'], ['b2', 'b3']] as const) {
      h.ends.get(next)!();
      await turn();
      await turn();
      expect(h.started.at(-1)).toBe(ran);
    }
    h.ends.get('b3')!();
    await Promise.all(calls);
    expect(h.started).toEqual(['b1', 'w1', 'w2', 'b2', 'b3']);
  });

  it('tells the walk\'s caller when it leaves the queue', async () => {
    const h = heldWalk();
    const usage = boundedWalks(h.walk, 1, 1);
    const began: string[] = [];
    const calls = ['a', 'b'].map((r) => usage(r, { onStart: () => began.push(r) }));
    await turn();
    expect(began).toEqual(['a']);
    h.ends.get('a')!();
    await turn();
    await turn();
    expect(began).toEqual(['a', 'b']);
    h.ends.get('b')!();
    await Promise.all(calls);
  });
});
