// The daemon runs crib-runtime and crib-pinns from sealed memfd copies it holds, named by
// /proc/<daemon pid>/fd/<n>. Both binaries protect themselves where a container could reach them
// (native/include/crib-sealed-exe.h): before entering a container's namespaces they re-execute
// from a sealed copy of themselves, unless /proc/self/exe already is one. Handing them a sealed
// copy up front makes that check pass, so the daemon's creates and execs skip the copy and the
// extra execve (about a millisecond each), with the same protection: nothing can write, grow or
// shrink the file a container sees as /proc/<pid>/exe. The copies are taken once, at start: a
// new build of the binaries takes effect when the daemon restarts. Monitors use the runtime path
// only while the daemon that spawned them runs (create at start, exec per call).
import { log } from '../log.js';
import { nativeBinaries } from '../native-paths.js';
import { daemonFdPath } from '../sys/daemon-fd-path.js';
import { sealedMemfdCopy } from '../sys/sealed-memfd.js';

let served = false;

/** Point nativeBinaries.runtime and .pinns at sealed copies (once per process). A binary that
 * cannot be copied keeps its path: it then makes its own copy on every call that needs one. */
export function serveSealedBinaries(): void {
  if (served) return;
  served = true;
  for (const [key, name] of [['runtime', 'crib-runtime'], ['pinns', 'crib-pinns']] as const) {
    const source = nativeBinaries[key];
    try {
      const fd = sealedMemfdCopy(source, name);
      nativeBinaries[key] = daemonFdPath(fd);
      log.debug({ binary: source, path: nativeBinaries[key] }, 'serving a sealed copy');
    } catch (err) {
      log.warn({ err, binary: source }, `cannot serve a sealed copy of ${name}: it will copy itself on each call that enters a container`);
    }
  }
}
