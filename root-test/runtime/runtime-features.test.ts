// Runtime handler features read from the real binaries: the built crib-runtime and Debian's runc.
import { describe, expect, it } from 'vitest';
import { nativeBinaries } from '../../src/native-paths.js';
import { kernelHasMountSetattr, probeRuntimeFeatures } from '../../src/runtime/runtime-features.js';

describe('runtime handler features (real binaries)', () => {
  it('reads "rro" from the features documents of crib-runtime and runc', async () => {
    const expected = kernelHasMountSetattr();
    expect(await probeRuntimeFeatures('crib', nativeBinaries.runtime)).toEqual({ recursiveReadOnly: expected });
    expect(await probeRuntimeFeatures('runc', '/usr/sbin/runc')).toEqual({ recursiveReadOnly: expected });
  });
});
