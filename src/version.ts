import { PACKAGE_MANIFEST } from './package-root.js';

/** crib's own version, from package.json (one source of truth). */
export const CRIB_VERSION: string = PACKAGE_MANIFEST.version;

/** The CRI API version crib speaks. */
export const CRI_API_VERSION = 'v1';
