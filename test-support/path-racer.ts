// The path racer (path-racer.c): built static at test time so it runs on the host or inside a
// busybox image, and driven as a host process for the native runtime tests.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Compile path-racer.c (static) into dir; returns the binary's path. */
export function buildPathRacer(dir: string): string {
  const src = fileURLToPath(new URL('./path-racer.c', import.meta.url));
  const out = join(dir, 'path-racer');
  execFileSync('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', out, src]);
  return out;
}

/** Ask a racer working in dir to stop (it checks for this file). */
export function stopFile(dir: string): string {
  return join(dir, 'path-racer.stop');
}

export interface HostRacer {
  proc: ChildProcess;
  /** Stop it; resolves to the number of swaps it made. */
  stop(): Promise<number>;
}

/** Run the racer on the host, swapping dir/a and dir/b until stopped. */
export function startHostRacer(bin: string, dir: string, a: string, b: string): HostRacer {
  const proc = spawn(bin, [dir, a, b], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': the exit can be reported before the last of its output ("swaps N") is read.
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  return {
    proc,
    stop: async () => {
      writeFileSync(stopFile(dir), '');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      const m = /swaps (\d+)/.exec(out);
      if (code !== 0 || !m) throw new Error(`path racer in ${dir} failed (exit ${code}): ${out}`);
      return Number(m[1]);
    },
  };
}
