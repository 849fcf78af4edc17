// Running one CNI plugin binary per the CNI spec: parameters in CNI_* environment variables, the
// network config on stdin, a result (or an error object) as JSON on stdout.
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InternalError } from '../errors.js';
import { execFileWithoutFork } from '../sys/exec-file.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK';

export interface CniInvocation {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  /** "K=V;K2=V2" */
  args: string;
  binDirs: readonly string[];
  timeoutMs?: number;
}

export class CniPluginError extends InternalError {
  constructor(
    readonly plugin: string,
    readonly cniCode: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

export async function findPlugin(type: string, binDirs: readonly string[]): Promise<string> {
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // try the next dir
    }
  }
  throw new FailedPreconditionError(`CNI plugin "${type}" not found in ${binDirs.join(', ')}`);
}

/** Invoke a plugin; resolves with its parsed stdout (undefined when empty, as DEL may be). */
export async function invokePlugin(type: string, config: unknown, inv: CniInvocation): Promise<unknown> {
  const path = await findPlugin(type, inv.binDirs);
  const env = {
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_ARGS: inv.args,
    CNI_PATH: inv.binDirs.join(':'),
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
  };
  // Through posix_spawn, never a fork of the daemon: a plugin runs on every pod's set-up and teardown.
  const r = await execFileWithoutFork(path, [], { env, input: JSON.stringify(config), timeoutMs: inv.timeoutMs ?? 60_000, maxBuffer: 4 * 1024 * 1024 });
  const code = r.error ? (r.code ?? -1) : 0;
  const { stdout } = r;
  const stderr = r.stderr || (r.error?.message ?? '');
  let parsed: unknown;
  try {
    parsed = stdout.trim() === '' ? undefined : JSON.parse(stdout);
  } catch {
    parsed = undefined;
  }
  if (code !== 0) {
    const e = (parsed ?? {}) as { code?: number; msg?: string; details?: string };
    const what = [e.msg, e.details].filter(Boolean).join(': ') || stderr.trim() || `exit status ${code}`;
    throw new CniPluginError(type, e.code, `CNI plugin ${type} ${inv.command} failed${e.code !== undefined ? ` (code ${e.code})` : ''}: ${what}`);
  }
  return parsed;
}
