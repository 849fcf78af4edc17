// The package's root directory, the one holding crib's package.json. Where a module sits below
// it is not fixed: src/ when run from source (vitest, tsx), build/tsc/ as tsc compiles it, and
// dist/cli.js or one of its chunks under dist/chunks/ in the bundled daemon (package.json,
// build:ts). So files of the package are found from its root, never by counting ../ from a
// module's own path. The package.json found is kept (PACKAGE_MANIFEST): crib's version is read
// from it, not from a second read of the file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package's name in its package.json: a package.json of another name is not crib's root. */
const PACKAGE_NAME = 'crib';

/** What crib reads of its package.json. */
export interface PackageManifest {
  name: string;
  version: string;
}

/**
 * The nearest directory at or above `dir` with a package.json, which must be crib's, and that
 * package.json as read. A broken install (PREFIX/lib/crib without its package.json) would
 * otherwise find some other package's root further up and look for the native binaries and the
 * proto there: it fails here instead, naming the file it found.
 */
export function packageRootAbove(dir: string): { root: string; manifest: PackageManifest } {
  for (let d = dir; ; d = dirname(d)) {
    const file = join(d, 'package.json');
    if (existsSync(file)) {
      let manifest: Partial<PackageManifest>;
      try {
        manifest = JSON.parse(readFileSync(file, 'utf8')) as Partial<PackageManifest>;
      } catch (err) {
        throw new Error(`crib: cannot read ${file}, the package.json nearest to ${dir}: ${(err as Error).message}`);
      }
      if (manifest.name !== PACKAGE_NAME) {
        throw new Error(`crib: the package.json nearest to ${dir} is ${file}, of package ${JSON.stringify(manifest.name)}, not ${PACKAGE_NAME}: the installation is incomplete (reinstall with deploy/install.sh)`);
      }
      return { root: d, manifest: manifest as PackageManifest };
    }
    if (dirname(d) === d) throw new Error(`crib: no package.json above ${dir}: the installation is incomplete (reinstall with deploy/install.sh)`);
  }
}

const found = packageRootAbove(dirname(fileURLToPath(import.meta.url)));

/** The package root as a directory URL (ending in /). */
export const PACKAGE_ROOT: URL = pathToFileURL(`${found.root}/`);

/** The package's package.json, as read once to find PACKAGE_ROOT. */
export const PACKAGE_MANIFEST: PackageManifest = found.manifest;
