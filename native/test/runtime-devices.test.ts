// crib-runtime's device cgroup: linux.resources.devices is enforced as written, on v1
// (devices.allow/deny) and v2 (the BPF program), for the container's root. A linux.devices
// node is still created (mknod at create) when its rule grants no "m", and gets no rule of
// its own; the runtime's own defaults no longer include tun/tap (c 10:200).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { makeBundle, type Bundle, type Spec } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, deleteListed, leftovers } from './support/runtime-runner.js';

let rt: Runtime;
const bundles: Bundle[] = [];

beforeAll(async () => {
  rt = await Runtime.crib();
});

afterAll(async () => {
  const listed = await deleteListed(rt);
  for (const b of bundles) await b.remove();
  await rm(rt.root, { recursive: true, force: true });
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** What the runtime adds to every deny-all spec: the standard nodes, not tun/tap. */
const RUNTIME_DEFAULTS = ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm'];

// Opens for read and for write, then mknod of another node of the same device; prints what
// happened. Root in the container, with CAP_MKNOD and CAP_DAC_OVERRIDE: only the device
// cgroup can refuse.
const PROBE = [
  '(exec 3</dev/tun-node && echo read-opened) 2>&1',
  '(exec 3>/dev/tun-node && echo write-opened) 2>&1',
  '(mknod /dev/tun-again c 10 200 && echo mknod-ok) 2>&1',
].join('; ');

function withTun(access: string | undefined): (s: Spec) => void {
  return (s) => {
    for (const set of ['bounding', 'effective', 'permitted'] as const) s.process.capabilities[set].push('CAP_MKNOD', 'CAP_DAC_OVERRIDE');
    if (access !== undefined) {
      s.linux.devices = [{ path: '/dev/tun-node', type: 'c', major: 10, minor: 200, fileMode: 0o666 }];
      s.linux.resources.devices.push({ allow: true, type: 'c', major: 10, minor: 200, access });
    }
  };
}

async function probe(access: string | undefined, env?: NodeJS.ProcessEnv, extra = ''): Promise<string> {
  const b = await makeBundle('dev', ['sh', '-c', `${PROBE}${extra}; true`], withTun(access));
  bundles.push(b);
  const r = await rt.exec(['run', '--bundle', b.dir, b.id], env ? { env: { ...process.env, ...env } } : {});
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

const EPERM = 'Operation not permitted';

describe('device rules on cgroup v1', () => {
  const listInside = '; sort /sys/fs/cgroup/devices/devices.list';

  it('"r" reads, refuses a write and mknod; the node was made anyway; the list is exact', async () => {
    const out = (await probe('r', undefined, listInside)).split('\n');
    expect(out.slice(0, 3)).toEqual(['read-opened', `sh: can't create /dev/tun-node: ${EPERM}`, `mknod: /dev/tun-again: ${EPERM}`]);
    expect(out.slice(3).filter(Boolean)).toEqual([...RUNTIME_DEFAULTS, 'c 10:200 r'].sort());
  });

  it('"rwm" allows all three', async () => {
    const out = await probe('rwm');
    expect(out).toBe('read-opened\nwrite-opened\nmknod-ok\n');
  });

  it('a deny-all spec gets no tun/tap from the runtime', async () => {
    const out = (await probe(undefined, undefined, listInside)).split('\n');
    expect(out[2]).toBe(`mknod: /dev/tun-again: ${EPERM}`);
    expect(out.slice(3).filter(Boolean)).toEqual([...RUNTIME_DEFAULTS].sort());
  });
});

const UNIFIED = '/sys/fs/cgroup/unified';
const unifiedIsCgroup2 = existsSync(`${UNIFIED}/cgroup.procs`) && readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
  .some((l) => l.split(' ')[4] === UNIFIED && l.includes(' - cgroup2 '));

describe.skipIf(!unifiedIsCgroup2)('device rules on cgroup v2 (BPF)', () => {
  // The hybrid host's cgroup2 mount stands in for a v2 host.
  const v2 = { CRIB_CGROUP_ROOT: UNIFIED, CRIB_CGROUP_MODE: 'v2' };

  it('"r" reads, refuses a write and mknod; the node was made anyway', async () => {
    expect(await probe('r', v2)).toBe(`read-opened\nsh: can't create /dev/tun-node: ${EPERM}\nmknod: /dev/tun-again: ${EPERM}\n`);
  });

  it('"rw" reads and writes, refuses mknod', async () => {
    expect(await probe('rw', v2)).toBe(`read-opened\nwrite-opened\nmknod: /dev/tun-again: ${EPERM}\n`);
  });

  it('a deny-all spec gets no tun/tap from the runtime', async () => {
    const out = await probe(undefined, v2);
    expect(out.split('\n')[2]).toBe(`mknod: /dev/tun-again: ${EPERM}`);
  });
});
