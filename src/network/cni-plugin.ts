// Running one CNI plugin binary per the CNI spec: parameters in CNI_* environment variables, the
// network config on stdin, a result (or an error object) as JSON on stdout.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InternalError } from '../errors.js';
import { endChildInput } from '../sys/child-input.js';

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
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(path, [], { env, encoding: 'utf8', timeout: inv.timeoutMs ?? 60_000, maxBuffer: 4 * 1024 * 1024 }, (err, out, errOut) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: out, stderr: errOut || (err?.message ?? '') }),
    );
    endChildInput(child, JSON.stringify(config));
  });
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
