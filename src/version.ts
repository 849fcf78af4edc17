import { readFileSync } from 'node:fs';

/** crib's own version, from package.json (one source of truth). */
export const CRIB_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The CRI API version crib speaks. */
export const CRI_API_VERSION = 'v1';
