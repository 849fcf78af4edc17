// Loaded into the crib daemon by bench/stats.ts (NODE_OPTIONS=--import) so the benchmark can
// read the daemon's own event-loop delay: the daemon carries no benchmark code. On SIGUSR2 it
// writes a sequence number and the largest and 99th-percentile delay since the previous signal
// (milliseconds) to $CRIB_BENCH_LOOP_DELAY_FILE, and starts a new window; `atUs` is when
// (the monotonic clock a V8 CPU profile's timestamps use, microseconds), so a profile can be cut
// into the windows.
import { renameSync, writeFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const file = process.env.CRIB_BENCH_LOOP_DELAY_FILE;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let seq = 0;
  // Garbage collection in the window, milliseconds by kind (minor: scavenges; major: mark-compact).
  let gc = { minor: 0, major: 0, other: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = e.detail?.kind;
      const k = kind === constants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : kind === constants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : 'other';
      gc[k] += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('SIGUSR2', () => {
    writeFileSync(`${file}.tmp`, JSON.stringify({ seq: ++seq, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, atUs: Number(process.hrtime.bigint() / 1000n), gc }));
    gc = { minor: 0, major: 0, other: 0 };
    // rename: the benchmark never reads a half-written file.
    renameSync(`${file}.tmp`, file);
    h.reset();
  });
}

// With $CRIB_BENCH_CPU_PROF (a file), a V8 CPU profile of the whole run is written there when
// the daemon exits (--cpu-prof is not allowed in NODE_OPTIONS). The in-process session answers
// synchronously, so the profile is taken and written inside the exit handler.
// `crib daemon` re-executes itself with its V8 flags (src/daemon/node-flags.ts): the profiler
// starts only in the re-executed process, since a sampling signal pending across the exec
// would kill the new image before Node handles it.
const profFile = process.env.CRIB_BENCH_CPU_PROF;
if (profFile && process.execArgv.some((a) => a.startsWith('--max-opt'))) {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(profFile, JSON.stringify(res.profile));
    });
  });
}
