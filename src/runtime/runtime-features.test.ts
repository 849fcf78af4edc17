// Reading a handler's features; against the built crib-runtime and Debian's runc:
// root-test/runtime/runtime-features.test.ts.
import { describe, expect, it } from 'vitest';
import { kernelHasMountSetattr, probeRuntimeFeatures } from './runtime-features.js';

describe('runtime handler features', () => {
  it('knows which kernels have mount_setattr', () => {
    expect(kernelHasMountSetattr('5.11.22-generic')).toBe(false);
    expect(kernelHasMountSetattr('5.12.0')).toBe(true);
    expect(kernelHasMountSetattr('6.1.0-28-amd64')).toBe(true);
    expect(kernelHasMountSetattr('4.19.0')).toBe(false);
    expect(kernelHasMountSetattr('not-a-release')).toBe(false);
  });

  it('assumes nothing of a handler without a features command or with an unreadable one', async () => {
    expect(await probeRuntimeFeatures('false', '/bin/false')).toEqual({ recursiveReadOnly: false });
    expect(await probeRuntimeFeatures('true', '/bin/true')).toEqual({ recursiveReadOnly: false });
    expect(await probeRuntimeFeatures('missing', '/nonexistent/runtime')).toEqual({ recursiveReadOnly: false });
  });
});
