// Where the native binaries built by `make -C native` live, for src/ (vitest) and dist/ alike.
import { fileURLToPath } from 'node:url';

const buildDir = (name: string): string =>
  fileURLToPath(new URL(`../native/build/${name}`, import.meta.url));

export const nativeBinaries = {
  runtime: process.env.CRIB_RUNTIME_BINARY ?? buildDir('crib-runtime'),
  monitor: process.env.CRIB_MONITOR_BINARY ?? buildDir('crib-monitor'),
  pinns: process.env.CRIB_PINNS_BINARY ?? buildDir('crib-pinns'),
};
