// The package's root directory, the one holding package.json. Where a module sits below it is
// not fixed: src/ when run from source (vitest, tsx), dist/ as tsc compiles it, and dist/cli.js
// or one of its chunks under dist/chunks/ in the bundled daemon (package.json, build:ts). So
// files of the package are found from its root, never by counting ../ from a module's own path.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function rootAbove(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) throw new Error(`crib: no package.json above ${dir}`);
  }
}

/** The package root as a directory URL (ending in /). */
export const PACKAGE_ROOT: URL = pathToFileURL(`${rootAbove(dirname(fileURLToPath(import.meta.url)))}/`);
