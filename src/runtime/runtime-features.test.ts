// Reading a handler's features; against the built crib-runtime and Debian's runc:
// root-test/runtime/runtime-features.test.ts.
import { describe, expect, it } from 'vitest';
import { featuresOf, kernelHasMountSetattr, NO_FEATURES, probeRuntimeFeatures } from './runtime-features.js';

describe('runtime handler features', () => {
  it('knows which kernels have mount_setattr', () => {
    expect(kernelHasMountSetattr('5.11.22-generic')).toBe(false);
    expect(kernelHasMountSetattr('5.12.0')).toBe(true);
    expect(kernelHasMountSetattr('6.1.0-28-amd64')).toBe(true);
    expect(kernelHasMountSetattr('4.19.0')).toBe(false);
    expect(kernelHasMountSetattr('not-a-release')).toBe(false);
  });

  it('assumes nothing of a handler without a features command or with an unreadable one', async () => {
    expect(await probeRuntimeFeatures('false', '/bin/false')).toEqual(NO_FEATURES);
    expect(await probeRuntimeFeatures('true', '/bin/true')).toEqual(NO_FEATURES);
    expect(await probeRuntimeFeatures('missing', '/nonexistent/runtime')).toEqual(NO_FEATURES);
  });

  it('reports user namespaces only with the user namespace, idmapped mounts and a 5.19 kernel', () => {
    const full = { mountOptions: ['rro'], linux: { namespaces: ['user', 'network'], mountExtensions: { idmap: { enabled: true } } } };
    expect(featuresOf(full, '6.18.0')).toEqual({ recursiveReadOnly: true, userNamespaces: true });
    expect(featuresOf(full, '5.18.9').userNamespaces).toBe(false);
    // runc 1.1: knows the user namespace, but not idmapped mounts.
    expect(featuresOf({ linux: { namespaces: ['user'] } }, '6.18.0').userNamespaces).toBe(false);
    expect(featuresOf({ linux: { namespaces: ['network'], mountExtensions: { idmap: { enabled: true } } } }, '6.18.0').userNamespaces).toBe(false);
    expect(featuresOf({ linux: { namespaces: ['user'], mountExtensions: { idmap: { enabled: 'yes' } } } }, '6.18.0').userNamespaces).toBe(false);
  });
});
