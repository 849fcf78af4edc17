import { describe, expect, it } from 'vitest';
import { canonicalRegistry, credentialOwner, isNodeLocalAddress, mayCarryCredentials } from './credential-scope.js';
import { withDefaults } from './hosts.js';

describe('credential scope', () => {
  it('reads every spelling kubelet sends as server_address as one registry', () => {
    for (const hub of ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'HTTPS://Docker.IO']) {
      expect(canonicalRegistry(hub), hub).toBe('docker.io');
    }
    expect(canonicalRegistry('registry.example:5000')).toBe('registry.example:5000');
    expect(canonicalRegistry('http://10.0.0.5:5000/v2/')).toBe('10.0.0.5:5000');
    expect(canonicalRegistry('https://registry.example:443/')).toBe('registry.example');
    expect(canonicalRegistry('registry.example:443')).toBe('registry.example');
    expect(canonicalRegistry('[::1]:5000')).toBe('[::1]:5000');
    for (const bad of ['', '   ', 'ftp://x', 'https://user:pw@host', '*.example.com']) expect(canonicalRegistry(bad), bad).toBeUndefined();
  });

  it('gives credentials to the server_address when set, else to the image registry, comparing ports', () => {
    expect(credentialOwner(undefined, 'docker.io')).toBe('docker.io');
    expect(credentialOwner('', '127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(credentialOwner('https://index.docker.io/v1/', 'ghcr.io')).toBe('docker.io');
    expect(credentialOwner('registry.example:5000', 'registry.example:5001')).not.toBe(canonicalRegistry('registry.example:5001'));
    expect(credentialOwner('*.example.com', 'a.example.com')).toBeUndefined();
  });

  it('lets credentials travel over https, or plain http to loopback and insecure hosts only', () => {
    const config = withDefaults({ hosts: { '10.0.0.5:5000': { insecure: true } } });
    expect(mayCarryCredentials(config, new URL('https://registry.example/token'))).toBe(true);
    expect(mayCarryCredentials(config, new URL('http://127.0.0.1:5000/'))).toBe(true);
    expect(mayCarryCredentials(config, new URL('http://localhost:5000/'))).toBe(true);
    expect(mayCarryCredentials(config, new URL('http://10.0.0.5:5000/'))).toBe(true);
    expect(mayCarryCredentials(config, new URL('http://10.0.0.5:5001/'))).toBe(false);
    expect(mayCarryCredentials(config, new URL('http://registry.example/'))).toBe(false);
    expect(mayCarryCredentials(withDefaults({ hosts: { '*': { insecure: true } } }), new URL('http://registry.example/'))).toBe(true);
  });

  it('knows the addresses a remote registry must not point us at', () => {
    for (const h of ['127.0.0.1:80', 'localhost', '[::1]:5000', '0.0.0.0', '169.254.169.254', '[fe80::1]:80', '[::]']) expect(isNodeLocalAddress(h), h).toBe(true);
    for (const h of ['10.0.0.5:5000', 'auth.docker.io', '192.168.1.1', '[2001:db8::1]']) expect(isNodeLocalAddress(h), h).toBe(false);
  });
});
