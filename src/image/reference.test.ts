import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { isLoopbackHost, parseReference } from './reference.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseReference', () => {
  const valid: [string, { domain: string; path: string; tag?: string; digest?: string; canonical: string; familiar: string }][] = [
    ['busybox', { domain: 'docker.io', path: 'library/busybox', tag: 'latest', canonical: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' }],
    ['busybox:1.36', { domain: 'docker.io', path: 'library/busybox', tag: '1.36', canonical: 'docker.io/library/busybox:1.36', familiar: 'busybox:1.36' }],
    ['user/app', { domain: 'docker.io', path: 'user/app', tag: 'latest', canonical: 'docker.io/user/app:latest', familiar: 'user/app:latest' }],
    ['docker.io/busybox', { domain: 'docker.io', path: 'library/busybox', tag: 'latest', canonical: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' }],
    ['index.docker.io/user/app:v1', { domain: 'docker.io', path: 'user/app', tag: 'v1', canonical: 'docker.io/user/app:v1', familiar: 'user/app:v1' }],
    ['docker.io/library/busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest', canonical: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' }],
    [`busybox@${D}`, { domain: 'docker.io', path: 'library/busybox', digest: D, canonical: `docker.io/library/busybox@${D}`, familiar: `busybox@${D}` }],
    [`busybox:1.36@${D}`, { domain: 'docker.io', path: 'library/busybox', tag: '1.36', digest: D, canonical: `docker.io/library/busybox:1.36@${D}`, familiar: `busybox:1.36@${D}` }],
    ['registry.example.com:5000/team/app:v2', { domain: 'registry.example.com:5000', path: 'team/app', tag: 'v2', canonical: 'registry.example.com:5000/team/app:v2', familiar: 'registry.example.com:5000/team/app:v2' }],
    ['localhost/app', { domain: 'localhost', path: 'app', tag: 'latest', canonical: 'localhost/app:latest', familiar: 'localhost/app:latest' }],
    ['localhost:5000/a/b/c:x', { domain: 'localhost:5000', path: 'a/b/c', tag: 'x', canonical: 'localhost:5000/a/b/c:x', familiar: 'localhost:5000/a/b/c:x' }],
    [`127.0.0.1:5000/app@${D}`, { domain: '127.0.0.1:5000', path: 'app', digest: D, canonical: `127.0.0.1:5000/app@${D}`, familiar: `127.0.0.1:5000/app@${D}` }],
    ['[::1]:5000/app:1', { domain: '[::1]:5000', path: 'app', tag: '1', canonical: '[::1]:5000/app:1', familiar: '[::1]:5000/app:1' }],
    ['quay.io/a_b/c-d.e__f:T_1.x-y', { domain: 'quay.io', path: 'a_b/c-d.e__f', tag: 'T_1.x-y', canonical: 'quay.io/a_b/c-d.e__f:T_1.x-y', familiar: 'quay.io/a_b/c-d.e__f:T_1.x-y' }],
    ['library/busybox', { domain: 'docker.io', path: 'library/busybox', tag: 'latest', canonical: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' }],
    ['docker.io/library/a/b', { domain: 'docker.io', path: 'library/a/b', tag: 'latest', canonical: 'docker.io/library/a/b:latest', familiar: 'library/a/b:latest' }],
  ];
  it.each(valid)('parses %s', (input, want) => {
    const ref = parseReference(input);
    expect(ref.domain).toBe(want.domain);
    expect(ref.path).toBe(want.path);
    expect(ref.tag).toBe(want.tag);
    expect(ref.digest).toBe(want.digest);
    expect(ref.name).toBe(`${want.domain}/${want.path}`);
    expect(ref.toString()).toBe(want.canonical);
    expect(ref.familiar).toBe(want.familiar);
    // Canonical forms are fixed points.
    expect(parseReference(ref.toString()).toString()).toBe(want.canonical);
  });

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    [' busybox', /whitespace/],
    ['Busybox', /lowercase/],
    ['docker.io/User/app', /lowercase/],
    ['busybox:', /tag ""/],
    ['busybox:-x', /tag "-x"/],
    ['busybox:' + 'a'.repeat(129), /tag/],
    ['busybox@sha256:abc', /sha256 digest of 64/],
    [`busybox@sha512:${'a'.repeat(128)}`, /only sha256/],
    ['busybox@latest', /not a digest/],
    [`busybox@sha256:${'A'.repeat(64)}`, /64 lowercase hex/],
    ['a'.repeat(64), /image ID/],
    ['registry:99999/app', /port "99999"/],
    ['registry.example.com:x/app', /port "x"/],
    ['-bad.example.com/app', /not a valid host/],
    ['example.com//app', /empty component/],
    ['example.com/app/', /empty component/],
    ['example.com/a--_b', /malformed/],
    ['example.com/.app', /malformed/],
    ['/app', /empty/],
    ['[::1/app', /unclosed/],
    ['example.com/' + 'a'.repeat(250), /longer than 255/],
  ];
  it.each(invalid)('rejects %j', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain(`"${input}"`);
    expect((err as Error).message).toMatch(why);
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['localhost', true], ['localhost:5000', true], ['127.0.0.1:5000', true], ['127.1.2.3', true],
    ['[::1]:5000', true], ['docker.io', false], ['10.0.0.1:5000', false], ['128.0.0.1', false],
    ['127.0.0.1.example.com', false], ['registry.local:443', false],
  ])('%s → %s', (domain, want) => {
    expect(isLoopbackHost(domain)).toBe(want);
  });
});
