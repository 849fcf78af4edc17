// Starting crib-monitor processes and reading what they report. The fork happens on the spawn
// thread (sys/spawn-thread.ts): libuv forks from the calling thread, which stalls while the kernel
// copies the daemon's page tables, and StartContainer and every streaming exec launch a monitor.
import { nativeBinaries } from '../native-paths.js';
import { spawnDetachedOnThread, type DetachedExit } from '../sys/spawn-thread.js';

/**
 * Runs `crib-monitor <args>` whose first process daemonises and exits; the detached monitor
 * reports on fd 3. Resolves with the first process's exit code, its stderr (complete: read to
 * EOF), and the sync line (which may come later: --wait-attach sends it only once a client is
 * connected).
 */
export function spawnDetachedMonitor(args: string[]): { exited: Promise<DetachedExit>; syncLine: Promise<string> } {
  return spawnDetachedOnThread(nativeBinaries.monitor, args);
}
