// Loaded into the crib daemon by bench/stats.ts (NODE_OPTIONS=--import) so the benchmark can
// read the daemon's own event-loop delay: the daemon carries no benchmark code. On SIGUSR2 it
// writes a sequence number and the largest and 99th-percentile delay since the previous signal
// (milliseconds) to $CRIB_BENCH_LOOP_DELAY_FILE, and starts a new window.
import { renameSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.CRIB_BENCH_LOOP_DELAY_FILE;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let seq = 0;
  process.on('SIGUSR2', () => {
    writeFileSync(`${file}.tmp`, JSON.stringify({ seq: ++seq, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 }));
    // rename: the benchmark never reads a half-written file.
    renameSync(`${file}.tmp`, file);
    h.reset();
  });
}
