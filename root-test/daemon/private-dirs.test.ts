// Start-up tightening where owners change (root: chown): a directory another user owns is taken
// back, and the state dir goes to the socket group when the CRI socket is in it.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRIVATE, stateDirAccess, tightenInstall } from '../../src/daemon/private-dirs.js';
import { createLogger } from '../../src/log.js';

let base = '';
let root = '';
let state = '';
const log = createLogger({ level: 'silent' });

const mode = (p: string): number => statSync(p).mode & 0o7777;
function dir(path: string, m: number): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, m);
  return path;
}

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'crib-private-dirs-'));
  root = join(base, 'root');
  state = join(base, 'state');
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('tightenInstall, changing owners', () => {
  it('takes back a dir another user owns (they could loosen it again)', async () => {
    dir(root, 0o700);
    dir(state, 0o700);
    const pods = dir(join(state, 'pods'), 0o700);
    chownSync(pods, 65534, 65534);
    const [change] = await tightenInstall({ root, state, stateAccess: PRIVATE, log });
    expect(change).toEqual({ path: pods, from: '0700', to: '0700', owner: { from: '65534:65534', to: '0:65534' } });
    expect(statSync(pods).uid).toBe(0);
  });

  it('leaves the state dir 0710 for the socket group when the CRI socket is in it', async () => {
    dir(root, 0o711);
    dir(state, 0o711);
    dir(join(state, 'pods'), 0o711);
    const access = stateDirAccess(state, join(state, 'crib.sock'), 4242);
    await tightenInstall({ root, state, stateAccess: access, log });
    expect(mode(state)).toBe(0o710);
    expect(statSync(state).gid).toBe(4242);
    expect(mode(join(state, 'pods'))).toBe(0o700);
  });
});
