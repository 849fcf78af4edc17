#!/usr/bin/env node
// node deploy/copy-production-modules.mjs CHECKOUT DEST
// Copies the production dependency closure of CHECKOUT/package.json (dependencies, and the
// optional and peer dependencies that are present) from CHECKOUT/node_modules to
// DEST/node_modules, keeping npm's layout, so the installed daemon runs exactly the versions the
// checkout was tested with, offline and without npm. Dev dependencies (vitest, typescript, ...)
// are left out. Used by deploy/install.sh.
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

const [checkout, dest] = process.argv.slice(2);
if (!checkout || !dest) {
  console.error('usage: copy-production-modules.mjs CHECKOUT DEST');
  process.exit(2);
}
const modules = realpathSync(join(checkout, 'node_modules'));
const readPackage = (dir) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));

/** Node's lookup: DIR/node_modules/NAME, then each parent's, up to the checkout's node_modules. */
function locate(fromDir, name) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === dirname(modules) || dir === dirname(dir)) return undefined;
  }
}

const found = new Set();
const missing = [];
function visit(pkgDir, isRoot) {
  const pkg = readPackage(pkgDir);
  const wanted = [
    ...Object.keys(pkg.dependencies ?? {}).map((n) => [n, true]),
    ...Object.keys(pkg.optionalDependencies ?? {}).map((n) => [n, false]),
    ...Object.keys(pkg.peerDependencies ?? {}).map((n) => [n, false]),
  ];
  const from = isRoot ? dirname(modules) : pkgDir;
  for (const [name, required] of wanted) {
    const dir = locate(from, name);
    if (!dir) {
      if (required) missing.push(`${name} (needed by ${pkg.name})`);
      continue;
    }
    const real = realpathSync(dir);
    if (found.has(real)) continue;
    found.add(real);
    visit(real, false);
  }
}
visit(checkout, true);
if (missing.length > 0) {
  console.error(`node_modules lacks ${missing.join(', ')}: run npm ci in ${checkout}`);
  process.exit(1);
}

const target = join(dest, 'node_modules');
mkdirSync(target, { recursive: true });
for (const dir of [...found].sort()) {
  const rel = relative(modules, dir);
  if (rel.startsWith('..')) throw new Error(`${dir} is outside ${modules}`);
  // Each package without its own node_modules: the packages in there are copied as their own
  // entries, and only if production code needs them.
  const nested = join(dir, 'node_modules');
  cpSync(dir, join(target, rel), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => src !== nested && !src.startsWith(nested + sep),
  });
}
console.log(`${found.size} packages`);
