import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, containerCapabilities, currentCapabilities, normalizeCapability } from './capabilities.js';

const HOST = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');
const caps = (add: string[] = [], drop: string[] = [], ambient: string[] = []) => ({
  addCapabilities: add,
  dropCapabilities: drop,
  addAmbientCapabilities: ambient,
});

describe('containerCapabilities', () => {
  const cases: { name: string; req: ReturnType<typeof caps> | null; privileged?: boolean; uid?: number; bounding: string[]; effective?: string[]; ambient?: string[] }[] = [
    { name: 'default set', req: null, bounding: DEFAULT_CAPABILITIES },
    { name: 'add without CAP_ prefix, any case', req: caps(['net_admin', 'SYS_TIME']), bounding: [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN', 'CAP_SYS_TIME'] },
    { name: 'add with CAP_ prefix, no duplicates', req: caps(['CAP_NET_ADMIN', 'CHOWN']), bounding: [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'] },
    { name: 'drop', req: caps([], ['NET_RAW', 'cap_mknod']), bounding: DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_NET_RAW' && c !== 'CAP_MKNOD') },
    { name: 'drop ALL then add one', req: caps(['NET_BIND_SERVICE'], ['ALL']), bounding: ['CAP_NET_BIND_SERVICE'] },
    { name: 'add ALL = every capability the daemon holds', req: caps(['ALL']), bounding: HOST },
    { name: 'add ALL, drop one', req: caps(['ALL'], ['SYS_ADMIN']), bounding: HOST.filter((c) => c !== 'CAP_SYS_ADMIN') },
    { name: 'privileged ignores drops', req: caps([], ['ALL']), privileged: true, bounding: HOST },
    { name: 'non-root: bounding kept, effective/permitted empty', req: null, uid: 1000, bounding: DEFAULT_CAPABILITIES, effective: [] },
    {
      name: 'non-root with ambient keeps exactly the ambient ones',
      req: caps([], [], ['NET_BIND_SERVICE']),
      uid: 1000,
      bounding: DEFAULT_CAPABILITIES,
      effective: ['CAP_NET_BIND_SERVICE'],
      ambient: ['CAP_NET_BIND_SERVICE'],
    },
    {
      name: 'ambient outside the set joins the bounding set',
      req: caps([], [], ['net_admin']),
      uid: 1000,
      bounding: [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'],
      effective: ['CAP_NET_ADMIN'],
      ambient: ['CAP_NET_ADMIN'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = containerCapabilities({ capabilities: c.req, privileged: c.privileged ?? false, uid: c.uid ?? 0, hostCapabilities: HOST });
      expect(got.bounding).toEqual(c.bounding);
      expect(got.effective).toEqual(c.effective ?? c.bounding);
      expect(got.permitted).toEqual(c.effective ?? c.bounding);
      expect(got.ambient).toEqual(c.ambient ?? []);
      expect(got.inheritable).toEqual(c.ambient ?? []);
    });
  }

  it('rejects an unknown capability, naming it and the field', () => {
    const run = (req: ReturnType<typeof caps>) => () => containerCapabilities({ capabilities: req, privileged: false, uid: 0, hostCapabilities: HOST });
    expect(run(caps(['NET_FOO']))).toThrow(InvalidArgumentError);
    expect(run(caps(['NET_FOO']))).toThrow(/capabilities.addCapabilities: unknown capability "NET_FOO"/);
    expect(run(caps([], ['BOGUS']))).toThrow(/dropCapabilities: unknown capability "BOGUS"/);
    expect(run(caps([], [], ['ALL']))).toThrow(/addAmbientCapabilities/);
  });

  it('normalizes names', () => {
    expect(normalizeCapability('cap_sys_admin', 'x')).toBe('CAP_SYS_ADMIN');
    expect(normalizeCapability('Kill', 'x')).toBe('CAP_KILL');
  });
});

describe('currentCapabilities', () => {
  it('decodes CapBnd ∩ CapPrm from /proc/self/status', () => {
    const status = 'Name:\tx\nCapPrm:\t00000000a80425fb\nCapEff:\t0\nCapBnd:\t000001ffffffffff\n';
    expect(currentCapabilities(status)).toEqual(DEFAULT_CAPABILITIES.slice().sort((a, b) => ALL_CAPABILITIES.indexOf(a as never) - ALL_CAPABILITIES.indexOf(b as never)));
  });
});
