import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { chainId, chainIdOf, chainIds } from './chain-id.js';

// Computed here with node:crypto directly, not through the helpers under test.
const sha256 = (data: string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('chain IDs', () => {
  it('follow the OCI definition', () => {
    const d = [sha256('a'), sha256('b'), sha256('c')];
    expect(chainIdOf(undefined, d[0]!)).toBe(d[0]);
    const c1 = sha256(`${d[0]} ${d[1]}`);
    expect(chainIds(d)).toEqual([d[0], c1, sha256(`${c1} ${d[2]}`)]);
    expect(chainId(d)).toBe(sha256(`${c1} ${d[2]}`));
    expect(chainId([])).toBeUndefined();
    expect(() => chainIdOf(undefined, 'sha256:nope')).toThrow(InvalidArgumentError);
  });
});
