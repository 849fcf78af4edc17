import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../errors.js';
import { hostPlatform, platformRank, selectManifest } from './platform.js';
import type { Descriptor, Platform } from './types.js';

function entry(n: number, platform?: Platform): Descriptor {
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${String(n).repeat(64)}`, size: 1, platform };
}

describe('platform selection', () => {
  it('describes this host in GOARCH terms', () => {
    const p = hostPlatform();
    expect(p.os).toBe('linux');
    expect(p.architecture).toBe(process.arch === 'x64' ? 'amd64' : process.arch);
  });

  it('prefers an exact variant over none, and none over a newer variant', () => {
    const want = { os: 'linux', architecture: 'arm', variant: 'v7' };
    const entries = [
      entry(1, { os: 'linux', architecture: 'arm', variant: 'v8' }),
      entry(2, { os: 'linux', architecture: 'arm' }),
      entry(3, { os: 'linux', architecture: 'arm', variant: 'v7' }),
    ];
    expect(selectManifest(entries, want, 'x').digest).toBe(entries[2]!.digest);
    expect(selectManifest(entries.slice(0, 2), want, 'x').digest).toBe(entries[1]!.digest);
    expect(platformRank(want, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(1);
  });

  it('treats arm64 without variant as v8 and skips other OSes and attestations', () => {
    const want = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    const entries = [
      entry(1, { os: 'unknown', architecture: 'unknown' }),
      entry(2, { os: 'windows', architecture: 'arm64' }),
      entry(3, { os: 'linux', architecture: 'arm64' }),
    ];
    expect(selectManifest(entries, want, 'x').digest).toBe(entries[2]!.digest);
  });

  it('names the platforms on offer when none fits', () => {
    const entries = [entry(1, { os: 'linux', architecture: 's390x' }), entry(2)];
    expect(() => selectManifest(entries, { os: 'linux', architecture: 'amd64' }, 'reg/app:1')).toThrow(NotFoundError);
    expect(() => selectManifest(entries, { os: 'linux', architecture: 'amd64' }, 'reg/app:1')).toThrow(/reg\/app:1.*linux\/amd64.*linux\/s390x, unspecified/);
  });
});
