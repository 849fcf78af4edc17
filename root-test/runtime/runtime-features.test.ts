// Runtime handler features read from the real binaries: the built crib-runtime and Debian's runc.
import { describe, expect, it } from 'vitest';
import { nativeBinaries } from '../../src/native-paths.js';
import { kernelHasIdmappedOverlay, kernelHasMountSetattr, probeRuntimeFeatures } from '../../src/runtime/runtime-features.js';

describe('runtime handler features (real binaries)', () => {
  it('reads "rro" and user namespaces from the features documents of crib-runtime and runc', async () => {
    const rro = kernelHasMountSetattr();
    // crib-runtime joins a pod's user namespace and idmaps mounts; Debian's runc 1.1 reports no
    // idmapped mounts, so user-namespaced pods are refused on it.
    expect(await probeRuntimeFeatures('crib', nativeBinaries.runtime)).toEqual({ recursiveReadOnly: rro, userNamespaces: kernelHasIdmappedOverlay() });
    expect(await probeRuntimeFeatures('runc', '/usr/sbin/runc')).toEqual({ recursiveReadOnly: rro, userNamespaces: false });
  });
});
