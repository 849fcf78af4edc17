import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeBinaries, nativeBinaryDir } from './native-paths.js';

describe('native binary paths', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('are native/build in a checkout (this one)', () => {
    if (process.env.CRIB_RUNTIME_BINARY === undefined) expect(nativeBinaries.runtime).toBe(join(process.cwd(), 'native/build/crib-runtime'));
    expect(nativeBinaryDir(pathToFileURL(`${process.cwd()}/`))).toBe(join(process.cwd(), 'native/build/'));
  });

  it('are PREFIX/libexec/crib for a package installed in PREFIX/lib/crib (deploy/install.sh)', async () => {
    const prefix = await mkdtemp(join(tmpdir(), 'crib-prefix-'));
    dirs.push(prefix);
    await mkdir(join(prefix, 'lib/crib/dist'), { recursive: true });
    expect(nativeBinaryDir(pathToFileURL(join(prefix, 'lib/crib/')))).toBe(join(prefix, 'libexec/crib/'));
    // The same package with native/ next to it is a checkout again.
    await mkdir(join(prefix, 'lib/crib/native'));
    expect(nativeBinaryDir(pathToFileURL(join(prefix, 'lib/crib/')))).toBe(join(prefix, 'lib/crib/native/build/'));
  });
});
