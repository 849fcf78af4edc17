// The daemon's config crosses its re-exec (daemon/node-flags.ts) already read and checked: the
// process before the exec parses the TOML and validates it (smol-toml, zod), writes the result
// to a memfd the exec'd daemon inherits, and the daemon takes it from there. The daemon itself
// then never loads the TOML parser or zod, which it would hold for its whole life to use them once
// (issue 14). A daemon that was not re-executed (its flags given on node's command line) reads the
// file itself.
import { closeSync, readFileSync } from 'node:fs';
import type { CribConfig } from '../config/config.js';
import { InternalError } from '../errors.js';
import { memoryFile } from '../sys/memory-file.js';

/** Names the inherited fd; removed from the environment once read, so no child sees it. */
export const CONFIG_FD_ENV = 'CRIB_DAEMON_CONFIG_FD';
/** A config's JSON is a few KiB; more than this in the fd is not ours. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Writes `config` to a new memfd; returns its fd for execve to pass on. */
export function handOffConfig(config: CribConfig): number {
  return memoryFile('crib-config', JSON.stringify(config));
}

/** The config the process before the re-exec handed over, or undefined when there is none. */
export function takeHandedOffConfig(env: NodeJS.ProcessEnv = process.env): CribConfig | undefined {
  const value = env[CONFIG_FD_ENV];
  if (value === undefined) return undefined;
  delete env[CONFIG_FD_ENV];
  const fd = Number(value);
  if (!/^\d+$/.test(value) || fd < 3) throw new InternalError(`${CONFIG_FD_ENV}=${value} is not the fd of a handed-over config`);
  try {
    // /proc/self/fd opens the memfd anew, at offset 0.
    const text = readFileSync(`/proc/self/fd/${fd}`, 'utf8');
    if (text.length > MAX_CONFIG_BYTES) throw new Error(`more than ${MAX_CONFIG_BYTES} bytes`);
    return JSON.parse(text) as CribConfig;
  } catch (err) {
    throw new InternalError(`cannot read the config handed over in fd ${fd} (${CONFIG_FD_ENV}): ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}
