// Start-up tightening of an install made by an older crib: real dirs with the modes older
// versions gave them, real chmod, the warn lines read back from a real logger. Changing owners
// needs root: root-test/daemon/private-dirs.test.ts.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRIVATE, stateDirAccess, tightenInstall } from './private-dirs.js';
import { createLogger } from '../log.js';

let base = '';
let root = '';
let state = '';
const lines: { path: string; from: string; to: string; owner?: { from: string; to: string }; level: number }[] = [];
const log = createLogger({ level: 'warn', sink: (line) => lines.push(JSON.parse(line)) });

const mode = (p: string): number => statSync(p).mode & 0o7777;
function dir(path: string, m: number): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, m);
  return path;
}

// The layout and modes crib made before directories were private (observed on a live daemon).
function oldInstall(): Record<string, number> {
  const id = 'c'.repeat(64);
  const pod = 'p'.repeat(64);
  const made: Record<string, number> = {
    [root]: 0o711,
    [join(root, 'snapshots')]: 0o711,
    [join(root, 'snapshots', 'active')]: 0o711,
    [join(root, 'snapshots', '1')]: 0o755,
    [join(root, 'snapshots', 'tmp-0123')]: 0o755,
    [join(root, 'snapshots', 'active', id)]: 0o755,
    [join(root, 'content')]: 0o700,
    [join(root, 'content', 'sha256')]: 0o700,
    [join(root, 'images')]: 0o700,
    [state]: 0o711,
    [join(state, 'containers')]: 0o711,
    [join(state, 'containers', id)]: 0o711,
    [join(state, 'containers', id, 'bundle')]: 0o711,
    [join(state, 'pods')]: 0o711,
    [join(state, 'pods', pod)]: 0o711,
    [join(state, 'pods', pod, 'files')]: 0o711,
    [join(state, 'runtime')]: 0o700,
  };
  for (const [p, m] of Object.entries(made)) dir(p, m);
  return made;
}

// Content whose modes belong to images and containers: never touched.
function content(): Record<string, number> {
  const id = 'c'.repeat(64);
  const pod = 'p'.repeat(64);
  const keep: Record<string, number> = {
    [join(root, 'snapshots', '1', 'fs')]: 0o755,
    [join(root, 'snapshots', '1', 'fs', 'tmp')]: 0o1777,
    [join(root, 'snapshots', 'active', id, 'fs')]: 0o755,
    [join(state, 'containers', id, 'bundle', 'rootfs')]: 0o755,
    [join(state, 'pods', pod, 'files', 'shm')]: 0o1777,
    [join(state, 'pods', pod, 'ns')]: 0o755,
  };
  for (const [p, m] of Object.entries(keep)) dir(p, m);
  return keep;
}

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'crib-private-dirs-'));
  root = join(base, 'root');
  state = join(base, 'state');
  lines.length = 0;
});
afterEach(() => {
  // A test may leave root read-only (0500), which an unprivileged owner cannot empty.
  try {
    chmodSync(root, 0o700);
  } catch {
    // never made, or a dangling symlink
  }
  rmSync(base, { recursive: true, force: true });
});

describe('tightenInstall', () => {
  it('makes an old install private and logs each dir it changed at warn', async () => {
    const made = oldInstall();
    const keep = content();
    const changes = await tightenInstall({ root, state, stateAccess: PRIVATE, log });
    for (const p of Object.keys(made)) expect([p, mode(p)]).toEqual([p, 0o700]);
    for (const [p, m] of Object.entries(keep)) expect([p, mode(p)]).toEqual([p, m]);
    const loose = Object.entries(made).filter(([, m]) => m !== 0o700);
    expect(changes.map((c) => c.path).sort()).toEqual(loose.map(([p]) => p).sort());
    expect(lines.map((l) => [l.level, l.path, l.from, l.to]).sort()).toEqual(
      loose.map(([p, m]) => [40, p, `0${m.toString(8)}`, '0700']).sort());
    // A second start has nothing left to do.
    lines.length = 0;
    expect(await tightenInstall({ root, state, stateAccess: PRIVATE, log })).toEqual([]);
    expect(lines).toEqual([]);
  });

  it('never loosens: a tighter dir keeps its mode, setgid and sticky bits go', async () => {
    dir(join(root, 'images'), 0o1777);
    dir(root, 0o500);
    dir(state, 0o2750);
    await tightenInstall({ root, state, stateAccess: PRIVATE, log });
    expect(mode(root)).toBe(0o500);
    expect(mode(state)).toBe(0o700);
    expect(mode(join(root, 'images'))).toBe(0o700);
  });

  it('follows a symlinked root but no symlink below it', async () => {
    const real = dir(join(base, 'real-root'), 0o755);
    symlinkSync(real, root);
    dir(state, 0o700);
    const elsewhere = dir(join(base, 'elsewhere'), 0o755);
    symlinkSync(elsewhere, join(real, 'content'));
    await tightenInstall({ root, state, stateAccess: PRIVATE, log });
    expect(mode(real)).toBe(0o700);
    expect(mode(elsewhere)).toBe(0o755);
  });

  it('gives the state dir 0710 for the socket group only when the CRI socket is in it', () => {
    expect(stateDirAccess(state, join(state, 'crib.sock'), 4242)).toEqual({ mode: 0o710, gid: 4242 });
    expect(stateDirAccess(state, join(base, 'crib.sock'), 4242)).toEqual(PRIVATE);
    expect(stateDirAccess(state, join(state, 'crib.sock'), undefined)).toEqual(PRIVATE);
  });

  it('does not mind a missing state or store', async () => {
    dir(root, 0o711);
    writeFileSync(join(root, 'crib.lock'), '');
    expect(await tightenInstall({ root, state, stateAccess: PRIVATE, log })).toHaveLength(1);
    expect(mode(join(root, 'crib.lock'))).toBe(0o644);
  });
});
