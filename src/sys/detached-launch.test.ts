import { describe, expect, it } from 'vitest';
import { spawnDetached } from './detached-launch.js';

// A stand-in for crib-monitor: the first process prints to stderr and exits; what it leaves
// running (stdio /dev/null, as the monitor makes it) writes the sync line on descriptor 3 later.
const launch = (detached: string, first = 'echo "first process done" >&2; exit 0') =>
  spawnDetached('/bin/sh', ['-c', `(${detached}) </dev/null >/dev/null 2>&1 & ${first}`]);

describe('spawnDetached', () => {
  it('reports the first process\'s exit and stderr before the sync line its detached child sends later', async () => {
    const order: string[] = [];
    const started = Date.now();
    // The line holds the first process's pid and the session it is in.
    const { exited, syncLine } = launch('sleep 0.5; echo "$$ $(cut -d" " -f6 /proc/self/stat)" >&3');
    const exit = await exited.then((e) => (order.push('exited'), e));
    expect(exit).toEqual({ code: 0, stderr: 'first process done' });
    expect(Date.now() - started).toBeLessThan(450);
    const line = await syncLine.then((l) => (order.push('line'), l));
    expect(order).toEqual(['exited', 'line']);
    // In a session of its own, which the first process leads: the daemon's session ending
    // (a terminal closing) does not reach the monitor.
    const [pid, session] = line.split(' ');
    expect(session).toBe(pid);
    expect(Number(pid)).not.toBe(process.pid);
  });

  it('gives stdin and stdout /dev/null', async () => {
    const { syncLine } = spawnDetached('/bin/sh', ['-c', 'echo "$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1)" >&3']);
    await expect(syncLine).resolves.toBe('/dev/null /dev/null');
  });

  it('answers an empty line when descriptor 3 closes without one, with the exit code and stderr', async () => {
    const { exited, syncLine } = launch('exec 3>&-', 'echo "monitor: bad argument" >&2; exit 2');
    await expect(exited).resolves.toEqual({ code: 2, stderr: 'monitor: bad argument' });
    await expect(syncLine).resolves.toBe('');
  });

  it('names the signal that killed the first process after its stderr', async () => {
    const { exited } = launch('exec 3>&-', 'echo "monitor: dying" >&2; kill -9 $$');
    await expect(exited).resolves.toEqual({ code: null, stderr: 'monitor: dying (killed by SIGKILL)' });
  });

  it('fails a sync line past 4 KiB without a newline', async () => {
    const { exited, syncLine } = launch('head -c 5000 /dev/zero | tr "\\0" x >&3; sleep 1');
    await expect(exited).resolves.toMatchObject({ code: 0 });
    await expect(syncLine).rejects.toThrow("/bin/sh's sync pipe (fd 3): its first line passed 4096 bytes without a newline");
  });

  it('keeps the first 64 KiB of a stderr flood and says how much it dropped', async () => {
    const { exited } = spawnDetached('/bin/sh', ['-c', 'head -c 100000 /dev/zero | tr "\\0" e >&2; exit 1']);
    const exit = await exited;
    expect(exit.code).toBe(1);
    expect(exit.stderr).toBe(`${'e'.repeat(64 << 10)}… (${100000 - (64 << 10)} more bytes not kept)`);
  });

  it('answers a file that cannot be started with its exit unknown and the file named', async () => {
    const { exited, syncLine } = spawnDetached('/nonexistent/crib-monitor', []);
    const exit = await exited;
    expect(exit.code).toBeNull();
    expect(exit.stderr).toMatch(/posix_spawn \/nonexistent\/crib-monitor: ENOENT/);
    await expect(syncLine).resolves.toBe('');
  });
});
