import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS, missingDaemonEnv, missingDaemonFlags } from './node-flags.js';

describe('missingDaemonFlags', () => {
  it('asks for every flag when none is given', () => {
    expect(missingDaemonFlags([], '')).toEqual([...DAEMON_NODE_FLAGS]);
  });

  it('asks for none once the process runs with them (after the re-exec)', () => {
    expect(missingDaemonFlags([...DAEMON_NODE_FLAGS, '--enable-source-maps'], '')).toEqual([]);
  });

  it('keeps an operator\'s own value for a setting, on the command line or in NODE_OPTIONS', () => {
    const [first, ...rest] = DAEMON_NODE_FLAGS;
    const name = first!.split('=')[0]!;
    expect(missingDaemonFlags([`${name}=64`], '')).toEqual(rest);
    expect(missingDaemonFlags([], `--require /x.cjs  ${name}=64`)).toEqual(rest);
  });

  it('counts an operator\'s --expose-wasm as their setting for --no-expose-wasm', () => {
    expect(DAEMON_NODE_FLAGS).toContain('--no-expose-wasm');
    expect(missingDaemonFlags(['--expose-wasm'], '')).not.toContain('--no-expose-wasm');
    expect(missingDaemonFlags([], '')).toContain('--no-expose-wasm');
  });
});

describe('missingDaemonEnv', () => {
  it('asks for one malloc arena when the environment sets no limit', () => {
    expect(missingDaemonEnv({})).toEqual({ MALLOC_ARENA_MAX: '1' });
    expect(missingDaemonEnv({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' })).toEqual({ MALLOC_ARENA_MAX: '1' });
  });

  it('asks for nothing once the process has it (after the re-exec)', () => {
    expect(missingDaemonEnv({ MALLOC_ARENA_MAX: '1' })).toEqual({});
  });

  it('keeps an operator\'s own limit, either way glibc reads it', () => {
    expect(missingDaemonEnv({ MALLOC_ARENA_MAX: '4' })).toEqual({});
    expect(missingDaemonEnv({ GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2' })).toEqual({});
  });
});
