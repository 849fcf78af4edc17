// Starting crib-monitor processes and reading what they report, through posix_spawn
// (sys/detached-launch.ts): StartContainer and every streaming exec launch a monitor, and a fork
// of the daemon would stall every other RPC while the kernel copied its page tables.
import { nativeBinaries } from '../native-paths.js';
import { spawnDetached, type DetachedExit } from '../sys/detached-launch.js';

/**
 * Runs `crib-monitor <args>` whose first process daemonises and exits; the detached monitor
 * reports on fd 3. Resolves with the first process's exit code, its stderr (complete: read to
 * EOF), and the sync line (which may come later: --wait-attach sends it only once a client is
 * connected).
 */
export function spawnDetachedMonitor(args: string[]): { exited: Promise<DetachedExit>; syncLine: Promise<string> } {
  return spawnDetached(nativeBinaries.monitor, args);
}
