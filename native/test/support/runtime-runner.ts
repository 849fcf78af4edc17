// Drives an OCI runtime binary (crib-runtime, runc, crun) and the small C helpers the runtime
// tests need, and checks for leftovers (mounts, cgroups) after a test file.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testTag } from './runtime-bundle.js';

export const cribRuntime = process.env.CRIB_RUNTIME_BINARY
  ?? fileURLToPath(new URL('../../build/crib-runtime', import.meta.url));

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** stdout to /dev/null: for commands that leave a process holding their stdout (exec
   * --detach, run --detach), whose pipe would otherwise stay open. */
  detached?: boolean;
}

export function runProcess(bin: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['pipe', opts.detached ? 'ignore' : 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d) => { stdout += d; });
    p.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); }, opts.timeoutMs ?? 30_000);
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    p.stdin!.on('error', () => { /* the process may exit without reading its input */ });
    p.stdin!.end(opts.input ?? '');
  });
}

/** One runtime (binary + its own --root state dir). */
export class Runtime {
  constructor(readonly name: string, readonly bin: string, readonly root: string, readonly prefix: string[] = []) {}

  static async crib(): Promise<Runtime> {
    return new Runtime('crib', cribRuntime, await mkdtemp(join(tmpdir(), `${testTag}-state-`)));
  }

  static async runc(): Promise<Runtime> {
    return new Runtime('runc', 'runc', await mkdtemp(join(tmpdir(), `${testTag}-runc-`)));
  }

  /** Debian's crun 1.8 refuses the hybrid cgroup layout: hide the empty cgroup2 mount in a
   * private mount namespace. */
  static async crun(): Promise<Runtime> {
    return new Runtime('crun', 'unshare', await mkdtemp(join(tmpdir(), `${testTag}-crun-`)),
      ['-m', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"', 'crun']);
  }

  exec(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return runProcess(this.bin, [...this.prefix, '--root', this.root, ...args], opts);
  }

  async state(id: string): Promise<{ status: string; pid: number; annotations?: Record<string, string> }> {
    const r = await this.exec(['state', id]);
    if (r.code !== 0) throw new Error(`${this.name} state ${id}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }
}

export const hasBinary = (name: string): boolean =>
  (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, name)));

/** Compile a C helper from this folder into dir; or take it from CRIB_TEST_HELPERS_DIR, where
 * the cgroup v2 guest tier puts the helpers it built on the host (compiling in the emulated
 * guest takes a minute). */
export function buildHelper(name: string, dir: string): string {
  const prebuilt = process.env.CRIB_TEST_HELPERS_DIR;
  if (prebuilt && existsSync(join(prebuilt, name))) return join(prebuilt, name);
  const src = fileURLToPath(new URL(`./${name}.c`, import.meta.url));
  const out = join(dir, name);
  execFileSync('cc', ['-std=c11', '-D_GNU_SOURCE', '-O1', '-Wall', '-Wformat=2', '-Werror', '-o', out, src]);
  return out;
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/** Mounts whose mount point or source lies under prefix (leak check). */
export function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(prefix));
}

/** cgroup directories named for this test process, in any hierarchy (v1) or the unified one. */
export function leftoverCgroups(): string[] {
  const found: string[] = [];
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    for (const e of readdirSync('/sys/fs/cgroup')) if (e.startsWith(testTag)) found.push(join('/sys/fs/cgroup', e));
    return found;
  }
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', h);
    try {
      for (const e of readdirSync(dir)) if (e.startsWith(testTag)) found.push(join(dir, e));
    } catch { /* not a directory */ }
  }
  return found;
}

/** Children of this process still around (their pids). */
export function childPids(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) out.push(Number(e));
    } catch { /* gone */ }
  }
  return out;
}

/** Force-deletes every container `rt` still lists; returns their ids (each one a test's leak). */
export async function deleteListed(rt: Runtime): Promise<string[]> {
  const list = JSON.parse((await rt.exec(['list', '--format', 'json'])).stdout) as { id: string }[];
  for (const c of list) await rt.exec(['delete', '--force', c.id]);
  return list.map((c) => c.id);
}

/**
 * What a runtime test file must not leave behind once its bundles are removed: mounts under its
 * temp dirs, cgroups named for it, child processes. Expect it to equal NOTHING_LEFT.
 */
export function leftovers(): { mounts: string[]; cgroups: string[]; children: number[] } {
  return { mounts: mountsUnder('/tmp/' + testTag), cgroups: leftoverCgroups(), children: childPids() };
}
export const NOTHING_LEFT = { mounts: [], cgroups: [], children: [] };
