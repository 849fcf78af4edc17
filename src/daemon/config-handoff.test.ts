import { fstatSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configFromObject } from '../config/config.js';
import { CONFIG_FD_ENV, handOffConfig, takeHandedOffConfig } from './config-handoff.js';

describe('the config handed over across the re-exec', () => {
  it('comes back as it went, and its fd and variable are gone once taken', () => {
    const config = configFromObject({ root: '/x/root', registry: { 'docker.io': { mirrors: ['https://m.example'] } } });
    const fd = handOffConfig(config);
    const env: NodeJS.ProcessEnv = { [CONFIG_FD_ENV]: String(fd), OTHER: '1' };
    expect(takeHandedOffConfig(env)).toEqual(config);
    expect(env).toEqual({ OTHER: '1' });
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
  });

  it('is absent without the variable', () => {
    expect(takeHandedOffConfig({})).toBeUndefined();
  });

  it('refuses a variable that names no handed-over config', () => {
    expect(() => takeHandedOffConfig({ [CONFIG_FD_ENV]: 'x' })).toThrow(/is not the fd of a handed-over config/);
    expect(() => takeHandedOffConfig({ [CONFIG_FD_ENV]: '1' })).toThrow(/is not the fd of a handed-over config/);
  });
});
