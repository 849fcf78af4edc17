import { describe, expect, it } from 'vitest';
import { execFileWithoutFork } from './exec-file.js';

const sh = (script: string, opts: Partial<Parameters<typeof execFileWithoutFork>[2]> = {}) =>
  execFileWithoutFork('/bin/sh', ['-c', script], { timeoutMs: 30_000, maxBuffer: 1 << 20, ...opts });

describe('execFileWithoutFork', () => {
  it('answers with stdout and stderr, feeding stdin, in the environment given', async () => {
    const r = await sh('cat; echo " $GREETING"; echo warn >&2', { input: 'fed', env: { GREETING: 'hello' } });
    expect(r).toEqual({ stdout: 'fed hello\n', stderr: 'warn\n', code: 0, killed: false });
  });

  it('gives stdin /dev/null without input', async () => {
    expect((await sh('wc -c')).stdout.trim()).toBe('0');
    expect((await sh('readlink /proc/self/fd/0')).stdout.trim()).toBe('/dev/null');
  });

  it('fails with the exit status, keeping what the command printed', async () => {
    const r = await sh('echo partial; echo "no such device" >&2; exit 2');
    expect(r).toMatchObject({ stdout: 'partial\n', stderr: 'no such device\n', code: 2, killed: false });
    expect(r.error?.message).toBe('exited with status 2');
  });

  it('names the signal that killed the command', async () => {
    const r = await sh('kill -TERM $$');
    expect(r).toMatchObject({ code: null, killed: false });
    expect(r.error?.message).toBe('killed by SIGTERM');
  });

  it('kills a command that outlives its time with the signal asked for, not waiting for what it left running', async () => {
    const t0 = Date.now();
    // The trap's exit status shows the command got SIGTERM; the `sleep` it leaves holds the pipes.
    const r = await sh('trap "exit 9" TERM; sleep 30 & wait', { timeoutMs: 300, killSignal: 'SIGTERM' });
    expect(r).toMatchObject({ code: 9, killed: true });
    expect(r.error?.message).toBe('killed with SIGTERM after 300 ms');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('kills a command whose output passes maxBuffer, and fails it', async () => {
    const r = await sh('while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done', { maxBuffer: 64 << 10 });
    expect(r.code).toBeNull();
    expect(r.error?.message).toBe(`its stdout passed ${64 << 10} bytes and it was killed with SIGKILL`);
    expect(r.stdout.length).toBeLessThanOrEqual(64 << 10);
  });

  it('reports stdout as it arrives, before it answers, and decodes characters split between chunks', async () => {
    const chunks: string[] = [];
    let settled = false;
    const run = sh('printf "host ports \\303"; sleep 0.5; printf "\\251 removed\\n"; sleep 0.5', { onStdout: (c) => chunks.push(c) })
      .finally(() => (settled = true));
    await expect.poll(() => chunks.join(''), { timeout: 10_000 }).toBe('host ports ');
    expect(settled).toBe(false);
    const r = await run;
    expect(r.stdout).toBe('host ports é removed\n');
    expect(chunks.join('')).toBe(r.stdout);
  });

  it('survives a command that exits without reading its input (EPIPE is not an unhandled error)', async () => {
    // More than a pipe buffer, so the write is still pending when /bin/true exits.
    const input = 'x'.repeat(4 << 20);
    for (let i = 0; i < 5; i++) {
      expect((await execFileWithoutFork('/bin/true', [], { timeoutMs: 30_000, maxBuffer: 1024, input })).error).toBeUndefined();
    }
    // Let any late 'error' event fire: without a listener it would fail the test run.
    await new Promise((r) => setTimeout(r, 50));
  });

  it('answers a command that cannot be started with the file named', async () => {
    const r = await execFileWithoutFork('/nonexistent/crib-no-such-tool', ['x'], { timeoutMs: 1000, maxBuffer: 1024 });
    expect(r).toMatchObject({ stdout: '', stderr: '', code: null, killed: false });
    expect(r.error?.message).toMatch(/posix_spawn \/nonexistent\/crib-no-such-tool: ENOENT/);
  });
});

describe('execFileWithoutFork finds a bare command name', () => {
  it('in the PATH of the environment given, as execvp does', async () => {
    const r = await execFileWithoutFork('sh', ['-c', 'echo "$0"'], { timeoutMs: 10_000, maxBuffer: 1024, env: { PATH: '/nonexistent:/bin' } });
    expect(r).toMatchObject({ stdout: 'sh\n', code: 0 });
  });

  it('and fails naming the PATH searched when no directory has it', async () => {
    const r = await execFileWithoutFork('crib-no-such-tool', [], { timeoutMs: 10_000, maxBuffer: 1024, env: { PATH: '/nonexistent:/bin' } });
    expect(r.error?.message).toBe('posix_spawn crib-no-such-tool: ENOENT (not found in PATH /nonexistent:/bin)');
  });
});
