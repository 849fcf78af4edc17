// Paths from the wire must be the path they look like: a runtime mounting "/a/../etc" or
// "/data/" would act on something other than what an operator reads in the config.
import { normalize } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';

/** Absolute, no "..", no "//", no trailing "/": the same path a runtime would mount on. */
export function checkCleanPath(path: string, field: string): void {
  if (path === '' || !path.startsWith('/') || path.includes('\0') || normalize(path) !== path || (path.length > 1 && path.endsWith('/'))) {
    throw new InvalidArgumentError(`${field} "${path}" must be an absolute, clean path (no "..", "//" or trailing "/")`);
  }
  if (path.split('/').includes('..')) throw new InvalidArgumentError(`${field} "${path}" must not contain ".."`);
}
