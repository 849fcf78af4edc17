// image_sub_path cleaning, the lexical half of keeping a sub path inside its image (the kernel
// half, openat2 RESOLVE_BENEATH on the mounted image, is in critest/image-volumes.test.ts).
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { cleanImageSubPath } from './image-volumes.js';

describe('cleanImageSubPath', () => {
  it.each([
    ['', ''], ['.', ''], ['./', ''], ['data', 'data'], ['a//b/./c/', 'a/b/c'], ['./a/b', 'a/b'], ['...', '...'], ['a/..b', 'a/..b'],
  ])('%j → %j', (given, clean) => {
    expect(cleanImageSubPath(given, 'mounts[0].imageSubPath')).toBe(clean);
  });

  it.each([
    ['..', /must not contain "\.\."/], ['a/../b', /must not contain "\.\."/], ['a/b/..', /must not contain "\.\."/],
    ['/etc', /must be relative to the image's root/], ['//etc', /must be relative/], ['a\0b', /contains a NUL byte/],
  ])('refuses %j', (given, message) => {
    expect(() => cleanImageSubPath(given, 'mounts[2].imageSubPath')).toThrow(InvalidArgumentError);
    expect(() => cleanImageSubPath(given, 'mounts[2].imageSubPath')).toThrow(/^mounts\[2\]\.imageSubPath /);
    expect(() => cleanImageSubPath(given, 'mounts[2].imageSubPath')).toThrow(message);
  });
});
