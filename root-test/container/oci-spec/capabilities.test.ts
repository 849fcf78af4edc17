// What a privileged container may get is what the daemon holds: read from this (root) process.
import { describe, expect, it } from 'vitest';
import { currentCapabilities } from '../../../src/container/oci-spec/capabilities.js';

describe('currentCapabilities', () => {
  it('reads this process: root without CAP_SYS_RESOURCE on this machine', () => {
    const mine = currentCapabilities();
    expect(mine).toContain('CAP_SYS_ADMIN');
    expect(mine).toContain('CAP_CHOWN');
  });
});
