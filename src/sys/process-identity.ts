// A process named by pid and start time (field 22 of /proc/<pid>/stat, clock ticks after boot):
// a pid alone may belong to another process by the time it is looked at again (after a monitor
// died, or the node rebooted while records stayed).
import { readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parens). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The start time of a live process, or undefined when there is none with this pid. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/**
 * Whether `pid` is still the process that started at `startTime` and has not exited (a zombie,
 * whose parent has not reaped it yet, has). Without a start time (records from before they were
 * kept) the pid alone decides.
 */
export function processAlive(pid: number | undefined, startTime?: string): boolean {
  if (!pid || pid <= 0) return false;
  const f = statFields(pid);
  if (!f) return false;
  if (f[0] === 'Z' || f[0] === 'X') return false;
  return startTime === undefined || f[19] === startTime;
}

/** The command line of a process (NUL-separated words), or '' when it is gone. */
export function processCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}
