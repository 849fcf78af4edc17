import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from './package-root.js';

/** crib's own version, from package.json (one source of truth). */
export const CRIB_VERSION: string = (
  JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string }
).version;

/** The CRI API version crib speaks. */
export const CRI_API_VERSION = 'v1';
