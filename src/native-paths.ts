// Where the native binaries (and the daemon's libc addon) live, for src/ (vitest), dist/ in a
// checkout, and an install alike.
// A checkout (its package root holds native/, the C sources) runs what `make -C native` built
// in native/build/. deploy/install.sh puts the package in PREFIX/lib/crib, without native/, and
// the binaries in PREFIX/libexec/crib, the usual place for programs only other programs run; so
// an installed daemon finds them with no setting. CRIB_*_BINARY override either (tests point
// them at copies).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from './package-root.js';

/** The directory holding crib-runtime, crib-monitor, crib-pinns, crib-hostports and crib-libc.node for the package at `packageRoot`. */
export function nativeBinaryDir(packageRoot: URL): string {
  const checkout = existsSync(fileURLToPath(new URL('native/', packageRoot)));
  return fileURLToPath(new URL(checkout ? 'native/build/' : '../../libexec/crib/', packageRoot));
}

const dir = nativeBinaryDir(PACKAGE_ROOT);

export const nativeBinaries = {
  runtime: process.env.CRIB_RUNTIME_BINARY ?? `${dir}crib-runtime`,
  monitor: process.env.CRIB_MONITOR_BINARY ?? `${dir}crib-monitor`,
  pinns: process.env.CRIB_PINNS_BINARY ?? `${dir}crib-pinns`,
  /** Run by crib-pinns for pods with host ports (native/pinns/host-ports.c), never by the daemon. */
  hostports: process.env.CRIB_HOSTPORTS_BINARY ?? `${dir}crib-hostports`,
};

/** Node-API addons the daemon loads (not programs: no override, nothing runs them but Node). */
export const nativeAddons = {
  libc: `${dir}crib-libc.node`,
};
