import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { DEFAULT_DEVICE_RULES, containerDevices } from './devices.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-spec-devices-${process.pid}-`));
  symlinkSync('/dev/null', join(dir, 'null-link'));
  writeFileSync(join(dir, 'file'), '');
  mkdirSync(join(dir, 'devdir'));
  symlinkSync('/dev/zero', join(dir, 'devdir', 'not-followed'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dev = (hostPath: string, containerPath: string, permissions = 'rwm') => ({ hostPath, containerPath, permissions });

describe('containerDevices', () => {
  it('denies all and allows the standard nodes by default', async () => {
    const { devices, rules } = await containerDevices([], false);
    expect(devices).toEqual([]);
    expect(rules[0]).toEqual({ allow: false, access: 'rwm' });
    const allowed = rules.slice(1).map((r) => `${r.type} ${r.major}:${r.minor ?? '*'}`);
    expect(allowed).toEqual(['c 1:3', 'c 1:8', 'c 1:7', 'c 5:0', 'c 1:5', 'c 1:9', 'c 5:1', 'c 136:*', 'c 5:2']);
    expect(rules).toEqual(DEFAULT_DEVICE_RULES);
  });

  it('stats a CRI device for its type and numbers, following host symlinks', async () => {
    const st = statSync('/dev/null');
    const { devices, rules } = await containerDevices([dev(join(dir, 'null-link'), '/dev/mynull', 'rw')], false);
    expect(devices).toEqual([{ type: 'c', path: '/dev/mynull', major: 1, minor: 3, fileMode: st.mode & 0o777, uid: st.uid, gid: st.gid }]);
    expect(rules.at(-1)).toEqual({ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
  });

  it('gives the node no read or write bit its permissions do not grant', async () => {
    const hostMode = statSync('/dev/null').mode & 0o777; // 0666
    const modes: Record<string, number> = {};
    for (const p of ['r', 'w', 'm', 'rw', 'rm', 'rwm']) {
      const { devices, rules } = await containerDevices([dev('/dev/null', `/dev/null-${p}`, p)], false);
      modes[p] = devices[0]!.fileMode!;
      expect(rules.at(-1)).toEqual({ allow: true, type: 'c', major: 1, minor: 3, access: p });
    }
    expect(hostMode).toBe(0o666);
    expect(modes).toEqual({ r: 0o444, w: 0o222, m: 0, rw: 0o666, rm: 0o444, rwm: 0o666 });
  });

  it('allows nothing beyond the standard nodes and the named devices: no tun/tap', async () => {
    const { rules } = await containerDevices([dev('/dev/zero', '/dev/zero', 'r')], false);
    expect(rules.filter((r) => r.allow && r.type === 'c' && r.major === 10)).toEqual([]);
    expect(rules.filter((r) => r.allow && r.major === undefined)).toEqual([]);
  });

  it('defaults empty permissions to rwm', async () => {
    const { rules } = await containerDevices([dev('/dev/zero', '/dev/zero', '')], false);
    expect(rules.at(-1)).toEqual({ allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' });
  });

  it('takes every device node under a directory', async () => {
    const { devices } = await containerDevices([dev('/dev/net', '/dev/net')], false);
    expect(devices.map((d) => d.path)).toEqual(['/dev/net/tun']);
    expect(devices[0]).toMatchObject({ type: 'c', major: 10, minor: 200 });
  });

  it('gives privileged containers all host devices and an allow-all rule', async () => {
    const { devices, rules } = await containerDevices([], true);
    expect(rules).toEqual([{ allow: true, access: 'rwm' }]);
    expect(devices.map((d) => d.path)).toEqual(expect.arrayContaining(['/dev/null', '/dev/zero', '/dev/net/tun']));
    expect(devices.some((d) => d.path.startsWith('/dev/pts/'))).toBe(false);
  });

  const invalid: [string, ReturnType<typeof dev>, RegExp][] = [
    ['a missing device', dev('/dev/crib-no-such-device', '/dev/x'), /devices\[0\].hostPath \/dev\/crib-no-such-device: no such device/],
    ['a regular file', dev('/etc/hostname', '/dev/x'), /devices\[0\].hostPath \/etc\/hostname is not a device node/],
    ['a relative host path', dev('dev/null', '/dev/x'), /devices\[0\].hostPath "dev\/null"/],
    ['a relative container path', dev('/dev/null', 'null'), /devices\[0\].containerPath "null"/],
    ['bad permissions', dev('/dev/null', '/dev/null', 'rx'), /devices\[0\].permissions "rx"/],
    ['repeated permissions', dev('/dev/null', '/dev/null', 'rr'), /permissions "rr"/],
  ];
  for (const [name, d, msg] of invalid) {
    it(`rejects ${name}`, async () => {
      const p = containerDevices([d], false);
      await expect(p).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(p).rejects.toThrow(msg);
    });
  }
});
