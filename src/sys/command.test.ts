import { describe, expect, it } from 'vitest';
import { InternalError } from '../errors.js';
import { CommandError, runCommand } from './command.js';

describe('runCommand', () => {
  it('resolves with stdout, feeding stdin', async () => {
    await expect(runCommand('/bin/sh', ['-c', 'cat; echo " and more"'], { input: 'fed' })).resolves.toBe('fed and more\n');
  });

  it('rejects with a CommandError naming the command, its exit status and its stderr', async () => {
    const err = await runCommand('/bin/sh', ['-c', 'echo "no such device" >&2; exit 2']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err).toBeInstanceOf(InternalError);
    const c = err as CommandError;
    expect([c.command, c.exitCode, c.stderr]).toEqual(['/bin/sh -c echo "no such device" >&2; exit 2', 2, 'no such device\n']);
    expect(c.message).toBe('/bin/sh -c echo "no such device" >&2; exit 2: no such device');
    const silent = (await runCommand('/bin/sh', ['-c', 'exit 3']).catch((e: unknown) => e)) as CommandError;
    expect(silent.message).toBe('/bin/sh -c exit 3: exited with status 3');
  });

  it('names a command that cannot be started', async () => {
    const err = (await runCommand('/nonexistent/crib-no-such-tool', ['x']).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.exitCode).toBeNull();
    expect(err.message).toMatch(/^\/nonexistent\/crib-no-such-tool x: .*ENOENT/);
  });

  it('ends a command that outlives timeoutMs with SIGTERM', async () => {
    const t0 = Date.now();
    // The trap's exit status shows the command got SIGTERM and could clean up.
    const err = (await runCommand('/bin/sh', ['-c', 'trap "exit 9" TERM; sleep 30 & wait'], { timeoutMs: 300 }).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.exitCode).toBe(9);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('reports stdout to onStdout while the command still runs (a helper saying it got halfway)', async () => {
    let early = '';
    let settled = false;
    const run = runCommand('/bin/sh', ['-c', 'echo "host ports removed"; sleep 1'], { onStdout: (c) => (early += c) }).finally(() => (settled = true));
    await expect.poll(() => early, { timeout: 10_000 }).toBe('host ports removed\n');
    expect(settled).toBe(false);
    await expect(run).resolves.toBe('host ports removed\n');
  });
});
