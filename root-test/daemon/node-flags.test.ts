// `crib daemon` runs with the V8 settings of src/daemon/node-flags.ts however it is started: it
// re-executes itself with them, keeping its pid (kubelet, systemd and the tests know it by it)
// and its stdout/stderr (its log).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS } from '../../src/daemon/node-flags.js';
import { startDaemon } from '../../test-support/daemon.js';

describe('crib daemon started as `node dist/cli.js daemon`', () => {
  it('runs, under the pid it was started with, with the daemon\'s Node flags and its log on stderr', async () => {
    const d = await startDaemon({ logLevel: 'info' });
    try {
      const argv = readFileSync(`/proc/${d.proc.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of DAEMON_NODE_FLAGS) expect(argv).toContain(flag);
      expect(argv.slice(-3, -1)).toEqual(['--config', d.configPath]);
      // The answering daemon is the process spawned: Version answered through d.cri, and its log
      // (written after the re-exec) reached the pipe it was started with.
      expect((await d.cri.runtime.Version({})).runtimeName).toBe('crib');
      expect(d.output()).toContain('crib daemon serving');
      expect(await d.stop()).toBe(0);
    } finally {
      await d.cleanup();
    }
  });
});
