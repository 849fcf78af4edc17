import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { containerSysctls } from './sysctls.js';

const own = [{ type: 'mount' as const }, { type: 'network' as const, path: '/run/netns/x' }, { type: 'ipc' as const }];

describe('containerSysctls', () => {
  it('passes namespaced sysctls for namespaces the container does not share with the node', () => {
    expect(containerSysctls(undefined, own)).toBeUndefined();
    expect(containerSysctls({}, own)).toBeUndefined();
    expect(containerSysctls({ 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shmmax': '1024' }, own)).toEqual({
      'net.ipv4.ip_unprivileged_port_start': '0',
      'kernel.shmmax': '1024',
    });
  });
  it('refuses node-wide sysctls and ones whose namespace is the node', () => {
    expect(() => containerSysctls({ 'vm.swappiness': '1' }, own)).toThrow(InvalidArgumentError);
    expect(() => containerSysctls({ 'vm.swappiness': '1' }, own)).toThrow(/"vm.swappiness" is not namespaced/);
    expect(() => containerSysctls({ 'net.core.somaxconn': '1' }, [{ type: 'mount' }])).toThrow(/needs a network namespace/);
  });
});
