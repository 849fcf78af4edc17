// Runs a real crib daemon (dist/cli.js, built by `npm run build`) in a private root, state dir and
// socket, for end-to-end tests. Each daemon is stopped by pid and its dirs removed by stop().
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultRuntimeRoot } from '../src/runtime/runtime-registry.js';
import { nativeBinaryDir } from '../src/native-paths.js';
import { PACKAGE_ROOT } from '../src/package-root.js';
import { criClient, type CriClient } from './cri-client.js';

const run = promisify(execFile);

/** crib-runtime's template mount namespace under a daemon's runtime root (native/src/mount-template.h):
 * the daemon makes it when it starts, and it stays while the daemon's dirs do. */
export const mountTemplateDir = (d: Pick<TestDaemon, 'state'>): string => join(defaultRuntimeRoot(d.state, 'crib'), '.mount-template');

/** Mount lines (/proc/self/mountinfo) under the daemon's dir, its runtime's template aside:
 * what pods and containers leave mounted. */
export function daemonMounts(d: Pick<TestDaemon, 'dir' | 'state'>): string[] {
  const template = mountTemplateDir(d);
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => {
    const m = l.split(' ')[4]?.replace(/\\040/g, ' ') ?? '';
    return (m === d.dir || m.startsWith(`${d.dir}/`)) && m !== template && !m.startsWith(`${template}/`);
  });
}

/** What the daemon's trash dirs still hold: removed pods', containers' and layers' files, which
 * it deletes after the removal answered (store/trash.ts). */
export function trashEntries(d: Pick<TestDaemon, 'state' | 'root'>): string[] {
  const dirs = [join(d.state, 'pods-trash'), join(d.state, 'containers-trash'), join(d.root, 'snapshots', 'active', '.trash')];
  return dirs.flatMap((dir) => (existsSync(dir) ? readdirSync(dir).map((e) => join(dir, e)) : []));
}

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
/** The built crib-runtime (the tests' daemons run it; test-support drives it directly too): where
 * the product finds it, not CRIB_RUNTIME_BINARY, which test files set for their daemons. */
export const RUNTIME = `${nativeBinaryDir(PACKAGE_ROOT)}crib-runtime`;

export interface TestDaemon {
  dir: string;
  /** The daemon's private pod network (derived from dir, so a restart gets the same one). */
  bridge: string;
  nftTable: string;
  podCidr: string;
  root: string;
  state: string;
  socket: string;
  configPath: string;
  proc: ChildProcess;
  cri: CriClient;
  /** Everything the daemon wrote to stderr/stdout so far (JSON log lines). */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** stop(), then remove the dirs. */
  cleanup(): Promise<void>;
}

export interface DaemonOptions {
  /** Extra TOML appended to the generated config. */
  toml?: string;
  /** Reuse a root/state from an earlier daemon (restart tests). */
  dir?: string;
  /** Default debug: tests read the log; benchmarks want less. */
  logLevel?: string;
  /** Extra environment for the daemon, e.g. CRIB_RUNTIME_BINARY pointing at a copy of a binary
   * a test may damage (src/native-paths.ts). */
  env?: NodeJS.ProcessEnv;
  /** How long the daemon may take to answer (default 20 s; the emulated test guest needs more). */
  startTimeoutMs?: number;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function spawnDaemon(args: string[], env?: NodeJS.ProcessEnv): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const proc = spawn(process.execPath, [CLI, 'daemon', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

/** Remove a test daemon's bridge and nftables table (both idempotent). */
export async function removeNetwork(bridge: string, nftTable: string): Promise<void> {
  await run('ip', ['link', 'del', bridge]).catch(() => undefined);
  await run('nft', ['delete', 'table', 'ip', nftTable]).catch(() => undefined);
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'crib-e2e-')));
  await mkdir(dir, { recursive: true });
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const socket = join(dir, 'crib.sock');
  const configPath = join(dir, 'config.toml');
  // Each test daemon gets its own bridge, subnet and nftables table, named from its dir, so test
  // files running side by side never share (or tear down) each other's network.
  const h = createHash('sha256').update(dir).digest();
  const bridge = `cribt${h.toString('hex').slice(0, 6)}`;
  const nftTable = `cribt${h.toString('hex').slice(0, 6)}`;
  const podCidr = `10.${200 + (h[3]! % 50)}.${h[4]}.0/24`;
  await writeFile(
    configPath,
    `root = "${root}"\nstate = "${state}"\nlog_level = "${opts.logLevel ?? 'debug'}"\n[grpc]\naddress = "unix://${socket}"\n` +
      `[network]\nbridge = "${bridge}"\npod_cidr = "${podCidr}"\nnft_table = "${nftTable}"\n${opts.toml ?? ''}\n`,
  );
  const { proc, output, exited } = spawnDaemon(['--config', configPath], opts.env);
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  const cri = criClient(socket);
  try {
    await waitFor(`crib daemon on ${socket}`, async () => {
      if (exitCode !== undefined) throw new Error(`daemon exited with ${exitCode}:\n${output()}`);
      await cri.runtime.Version({}, { deadline: Date.now() + 1000 });
      return true;
    }, opts.startTimeoutMs);
  } catch (err) {
    // A daemon that never answered must not outlive the test run that gave up on it.
    cri.close();
    if (exitCode === undefined) proc.kill('SIGKILL');
    await exited;
    throw err;
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    cri.close();
    if (exitCode === undefined) proc.kill(signal);
    return exited;
  };
  return {
    dir, root, state, socket, configPath, proc, cri, output, stop, bridge, nftTable, podCidr,
    cleanup: async () => {
      // Pods a failed test or benchmark left behind would outlive the daemon (their monitors are
      // detached by design): remove them while the daemon can still do it properly.
      if (exitCode === undefined) {
        try {
          const { items } = await cri.runtime.ListPodSandbox({}, { deadline: Date.now() + 5000 });
          for (const p of items) await cri.runtime.RemovePodSandbox({ podSandboxId: p.id }, { deadline: Date.now() + 30_000 });
        } catch {
          /* best effort: the daemon may be wedged by the failure being cleaned up after */
        }
      }
      await stop();
      await removeNetwork(bridge, nftTable);
      // crib's default cgroup parent for pods without one; still in use by others: left alone.
      await removeCgroupParent('crib');
      await removeMountTemplate(state);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Unpin the template mount namespace crib-runtime keeps under a daemon's state dir (a daemon
 * makes it when it starts): until then the dir cannot be removed. */
export async function removeMountTemplate(stateDir: string): Promise<void> {
  await run(RUNTIME, ['--root', defaultRuntimeRoot(stateDir, 'crib'), 'mount-template', '--remove']).catch(() => undefined);
}

/** rmdir a cgroup parent the tests' pods used, in every hierarchy (v1) or the unified one; a
 * parent still in use (another test's pods) is left alone. */
export async function removeCgroupParent(name: string): Promise<void> {
  const { readdir, rmdir } = await import('node:fs/promises');
  const roots = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup']
    : (await readdir('/sys/fs/cgroup')).map((c) => `/sys/fs/cgroup/${c}`);
  for (const root of roots) await rmdir(join(root, name)).catch(() => undefined);
}
