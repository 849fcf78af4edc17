import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_MANIFEST, PACKAGE_ROOT, packageRootAbove } from './package-root.js';

describe('the package root', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tree = async () => {
    const d = await mkdtemp(join(tmpdir(), 'crib-pkgroot-'));
    dirs.push(d);
    await mkdir(join(d, 'lib/crib/dist/chunks'), { recursive: true });
    return d;
  };

  it('is this checkout for its own modules', () => {
    expect(fileURLToPath(PACKAGE_ROOT)).toBe(`${process.cwd()}/`);
    expect(PACKAGE_MANIFEST.name).toBe('crib');
  });

  it('is the nearest directory whose package.json is crib\'s, from any depth below it', async () => {
    const d = await tree();
    await writeFile(join(d, 'package.json'), JSON.stringify({ name: 'other' }));
    await writeFile(join(d, 'lib/crib/package.json'), JSON.stringify({ name: 'crib', version: '1.0.0' }));
    expect(packageRootAbove(join(d, 'lib/crib/dist/chunks'))).toEqual({ root: join(d, 'lib/crib'), manifest: { name: 'crib', version: '1.0.0' } });
    expect(packageRootAbove(join(d, 'lib/crib/dist')).root).toBe(join(d, 'lib/crib'));
  });

  it('refuses another package\'s package.json found first (an install that lost its own), naming it', async () => {
    const d = await tree();
    await writeFile(join(d, 'package.json'), JSON.stringify({ name: 'other' }));
    expect(() => packageRootAbove(join(d, 'lib/crib/dist/chunks')))
      .toThrow(`the package.json nearest to ${join(d, 'lib/crib/dist/chunks')} is ${join(d, 'package.json')}, of package "other", not crib`);
  });

  it('refuses a package.json it cannot parse, naming it', async () => {
    const d = await tree();
    await writeFile(join(d, 'lib/crib/package.json'), '{ "name": "cri');
    expect(() => packageRootAbove(join(d, 'lib/crib/dist'))).toThrow(`cannot read ${join(d, 'lib/crib/package.json')}`);
  });
});
