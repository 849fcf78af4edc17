// Confinement of layer entry names to the layer directory. Names are cleaned lexically and then
// created component by component without ever following a symlink, so no entry — however the
// archive is crafted — can make us write outside the directory we were given.
import { InvalidArgumentError } from '../../errors.js';

/**
 * The cleaned path of a tar entry relative to the layer root ('' for the root itself).
 * Rejects absolute names and names whose `..` components climb above the root.
 */
export function cleanEntryPath(name: string, what = 'entry'): string {
  if (name.includes('\0')) {
    throw new InvalidArgumentError(`layer ${what} ${JSON.stringify(name)} contains a NUL byte`);
  }
  if (name.startsWith('/')) {
    throw new InvalidArgumentError(`layer ${what} ${JSON.stringify(name)} is an absolute path`);
  }
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) {
        throw new InvalidArgumentError(`layer ${what} ${JSON.stringify(name)} climbs out of the layer with ".."`);
      }
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}
