// IPAM against real files in a temp dir: no network changes, so these run anywhere.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { Ipam } from './ipam.js';
import { formatIp, parseCidr, parseIp } from './ip-address.js';

const dir = mkdtempSync(join(tmpdir(), `crib-ipam-test-${process.pid}-`));
let n = 0;
const file = () => join(dir, `ipam-${n++}`, 'ipam.json');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Ipam', () => {
  it('hands out distinct host addresses, skipping network, gateway and broadcast', async () => {
    const ipam = new Ipam(file(), '10.250.7.0/29'); // .0 net, .1 gw, .2-.6 pods, .7 broadcast
    expect(ipam.gateway).toBe('10.250.7.1');
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await ipam.allocate(`pod-${i}`));
    expect(got).toEqual(['10.250.7.2', '10.250.7.3', '10.250.7.4', '10.250.7.5', '10.250.7.6']);
    const err = await ipam.allocate('pod-5').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toMatch(/10\.250\.7\.0\/29/);
  });

  it('removes, on first use, the temp files crashed writes left, in today\'s names and the former writer\'s', async () => {
    const path = file();
    const at = dirname(path);
    mkdirSync(at, { recursive: true });
    const leftovers = ['.tmp-ipam.json-0123456789ab', '.ipam.json.0123456789ab.tmp'];
    // Other documents' temps are theirs to sweep (hostports.json lives in the same dir).
    const others = ['.tmp-hostports.json-0123456789ab', '.ipam6.json.0123456789ab.tmp'];
    for (const name of [...leftovers, ...others]) writeFileSync(join(at, name), '{"torn');
    const ipam = new Ipam(path, '10.250.6.0/24');
    expect(await ipam.allocate('a')).toBe('10.250.6.2');
    expect(readdirSync(at).sort()).toEqual([...others, 'ipam.json'].sort());
  });

  it('gives a pod the same address when asked again', async () => {
    const ipam = new Ipam(file(), '10.250.8.0/24');
    const a = await ipam.allocate('a');
    expect(await ipam.allocate('a')).toBe(a);
    expect(await ipam.get('a')).toBe(a);
  });

  it('never gives one address twice under concurrent allocations', async () => {
    const ipam = new Ipam(file(), '10.250.9.0/26');
    const ips = await Promise.all(Array.from({ length: 40 }, (_, i) => ipam.allocate(`p${i}`)));
    expect(new Set(ips).size).toBe(40);
  });

  it('persists allocations across instances and frees them on release', async () => {
    const path = file();
    const first = new Ipam(path, '10.250.10.0/24');
    const a = await first.allocate('a');
    const b = await first.allocate('b');
    expect(JSON.parse(readFileSync(path, 'utf8')).allocations).toEqual({ a, b });

    const second = new Ipam(path, '10.250.10.0/24');
    expect(await second.get('a')).toBe(a);
    const c = await second.allocate('c');
    expect([a, b]).not.toContain(c);

    expect(await second.release('a')).toBe(true);
    expect(await second.release('a')).toBe(false);
    expect(await new Ipam(path, '10.250.10.0/24').get('a')).toBeUndefined();
  });

  it('does not reuse a released address while others are free', async () => {
    const ipam = new Ipam(file(), '10.250.11.0/24');
    const a = await ipam.allocate('a');
    await ipam.release('a');
    expect(await ipam.allocate('b')).not.toBe(a);
  });

  it('wraps around and reuses freed addresses once the end is reached', async () => {
    const ipam = new Ipam(file(), '10.250.12.0/30'); // a single pod address: .2
    expect(await ipam.allocate('a')).toBe('10.250.12.2');
    await expect(ipam.allocate('b')).rejects.toBeInstanceOf(ResourceExhaustedError);
    await ipam.release('a');
    expect(await ipam.allocate('b')).toBe('10.250.12.2');
  });

  it('reconciles: frees the addresses of pods that are gone', async () => {
    const ipam = new Ipam(file(), '10.250.13.0/24');
    await ipam.allocate('live');
    await ipam.allocate('dead1');
    await ipam.allocate('dead2');
    expect((await ipam.reconcile(['live'])).sort()).toEqual(['dead1', 'dead2']);
    expect([...(await ipam.list()).keys()]).toEqual(['live']);
  });

  it('allocates IPv6 addresses in a /64 the same way', async () => {
    const path = file();
    const ipam = new Ipam(path, 'fd00:cb::/64');
    expect(ipam.gateway).toBe('fd00:cb::1');
    expect(await ipam.allocate('a')).toBe('fd00:cb::2');
    expect(await ipam.allocate('b')).toBe('fd00:cb::3');
    expect(await new Ipam(path, 'fd00:cb::/64').get('b')).toBe('fd00:cb::3');
    const tiny = new Ipam(file(), 'fd00:cc::/126'); // ::0 network, ::1 gateway, ::2 pod, ::3 kept
    expect(await tiny.allocate('a')).toBe('fd00:cc::2');
    await expect(tiny.allocate('b')).rejects.toBeInstanceOf(ResourceExhaustedError);
  });

  it('parses and formats addresses canonically', () => {
    for (const [text, canonical] of [
      ['10.0.0.1', '10.0.0.1'],
      ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['::ffff:10.1.2.3', '::ffff:a01:203'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
      ['fe80:0:0:1::', 'fe80:0:0:1::'],
    ] as const) {
      const { family, value } = parseIp(text);
      expect(formatIp(family, value)).toBe(canonical);
    }
    expect(() => parseIp('10.0.0.01')).toThrow(InvalidArgumentError); // octal or decimal? refused
    expect(() => parseIp('fe80::1%eth0')).toThrow(InvalidArgumentError);
  });

  it('rejects bad CIDRs and pod ids with a message naming them', () => {
    expect(() => new Ipam(file(), '10.250.14.1/24')).toThrow(/10\.250\.14\.1\/24.*host bits/);
    expect(() => new Ipam(file(), 'nonsense')).toThrow(InvalidArgumentError);
    expect(() => parseCidr('10.0.0.0/31')).toThrow(/prefix length/);
    expect(() => new Ipam(file(), '10.250.15.0/24').allocate('')).toThrow(InvalidArgumentError);
  });
});
