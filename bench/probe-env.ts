// The environment that loads bench/loop-delay-probe.mjs into a crib daemon (NODE_OPTIONS), for
// every benchmark that reads a daemon's event-loop delay or takes its CPU profile: the file the
// probe writes its delay window to, and the file its V8 CPU profile goes to when it stops.
import { fileURLToPath } from 'node:url';

const PROBE_MODULE = fileURLToPath(new URL('./loop-delay-probe.mjs', import.meta.url));

export function probeEnv(files: { delayFile?: string; cpuProfile?: string }): NodeJS.ProcessEnv {
  return {
    NODE_OPTIONS: `--import=${PROBE_MODULE}`,
    ...(files.delayFile !== undefined ? { CRIB_BENCH_LOOP_DELAY_FILE: files.delayFile } : {}),
    ...(files.cpuProfile !== undefined ? { CRIB_BENCH_CPU_PROF: files.cpuProfile } : {}),
  };
}
