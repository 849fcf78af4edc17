import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS, missingDaemonFlags } from './node-flags.js';

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
