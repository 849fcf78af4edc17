import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { hostIdOf, podUserNamespace, sameMappings } from './user-namespace.js';

const m = (containerId: number, hostId: number, length: number) => ({ containerId, hostId, length });
const POD = (uids: ReturnType<typeof m>[], gids = uids) => ({ mode: 'POD' as const, uids, gids });

describe('podUserNamespace', () => {
  it('is the host\'s for NODE or no options, and the maps for POD', () => {
    expect(podUserNamespace(null, 'f')).toBeUndefined();
    expect(podUserNamespace({ mode: 'NODE', uids: [], gids: [] }, 'f')).toBeUndefined();
    expect(podUserNamespace(POD([m(0, 100000, 65536)]), 'f')).toEqual({ uids: [m(0, 100000, 65536)], gids: [m(0, 100000, 65536)] });
    expect(podUserNamespace(POD([m(0, 100000, 1000), m(1000, 300000, 10)]), 'f')?.uids).toHaveLength(2);
  });

  const bad: [string, Parameters<typeof podUserNamespace>[0], RegExp][] = [
    ['CONTAINER mode', { mode: 'CONTAINER', uids: [m(0, 100000, 1)], gids: [m(0, 100000, 1)] }, /f.mode CONTAINER: a user namespace is per pod/],
    ['TARGET mode', { mode: 'TARGET', uids: [], gids: [] }, /f.mode TARGET/],
    ['no uids', POD([], [m(0, 100000, 1)]), /f.uids: mode POD needs at least one mapping/],
    ['no gids', { mode: 'POD', uids: [m(0, 100000, 1)], gids: [] }, /f.gids: mode POD needs at least one mapping/],
    ['too many', POD(Array.from({ length: 65 }, (_, i) => m(i, 100000 + i, 1))), /65 mappings, at most 64/],
    ['zero length', POD([m(0, 100000, 0)]), /length must not be 0/],
    ['past 32 bits', POD([m(0, 4294967000, 65536)]), /passes id 4294967294/],
    ['host root', POD([m(0, 0, 65536)]), /maps the node's root \(host id 0\)/],
    ['container overlap', POD([m(0, 100000, 10), m(5, 200000, 10)]), /container ids overlap containerId 0 length 10/],
    ['host overlap', POD([m(0, 100000, 10), m(20, 100005, 10)]), /host ids overlap hostId 100000 length 10/],
    ['root unmapped', POD([m(1, 100000, 10)]), /container id 0 must be mapped/],
    ['not an integer', POD([m(0, 100000.5, 10)]), /unsigned integers/],
  ];
  for (const [name, opts, msg] of bad) {
    it(`refuses ${name}`, () => {
      const f = () => podUserNamespace(opts, 'f');
      expect(f).toThrow(InvalidArgumentError);
      expect(f).toThrow(msg);
    });
  }

  it('maps container ids to host ids and compares maps', () => {
    const maps = [m(0, 100000, 1000), m(1000, 300000, 10)];
    expect(hostIdOf(maps, 0)).toBe(100000);
    expect(hostIdOf(maps, 1005)).toBe(300005);
    expect(hostIdOf(maps, 1010)).toBeUndefined();
    expect(sameMappings(maps, [...maps].reverse())).toBe(true);
    expect(sameMappings(maps, [maps[0]!])).toBe(false);
  });
});
