// The daemon's umask, read once without changing it (process.umask() with no argument is
// deprecated: it sets the mask to read it). Nothing in the daemon changes its umask, so the value
// read at start-up holds: a file created with a mode this mask does not narrow needs no chmod.
import { readFileSync } from 'node:fs';

/** The process umask; unknown (a kernel without the Umask line) reads as 0o777: always chmod. */
export const PROCESS_UMASK = (() => {
  const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? parseInt(m[1]!, 8) : 0o777;
})();

/** Whether a file or directory created with `mode` gets `mode` itself (the umask clears none of its bits). */
export const umaskKeeps = (mode: number): boolean => (mode & PROCESS_UMASK) === 0;
