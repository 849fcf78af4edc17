// Loaded into the crib daemon by bench/stats.ts (NODE_OPTIONS=--import) so the benchmark can
// read the daemon's own event-loop delay: the daemon carries no benchmark code. On SIGUSR2 it
// writes a sequence number and the largest and 99th-percentile delay since the previous signal
// (milliseconds) to $CRIB_BENCH_LOOP_DELAY_FILE, and starts a new window; `atUs` is when
// (the monotonic clock a V8 CPU profile's timestamps use, microseconds), so a profile can be cut
// into the windows.
//
// A delay is the daemon's own work holding the loop or the machine not running the daemon (on a
// 2-core machine the benchmark's client and the containers compete for the cores): CPU profiles
// of the longest delays between stats calls showed the daemon idle in most of them. So the probe
// also reads the main thread's time on a CPU from the kernel (/proc/thread-self/schedstat, kept
// open, read at offset 0 every millisecond) and reports `ownMaxMs`: the most CPU time the main
// thread ran between two 1 ms timer checks, less the 1 ms the check was meant to wait, i.e. the
// longest the daemon itself held its loop past a timer, whatever the scheduler did (comparable
// with the delay, which is also counted past the timer's due time).
import { openSync, readSync, renameSync, writeFileSync } from 'node:fs';
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
  const schedFd = openSync('/proc/thread-self/schedstat', 'r');
  const schedBuf = Buffer.alloc(128);
  /** Nanoseconds the main thread has run on a CPU (the file's first field), parsed in place: a
   * string a millisecond would be garbage of the probe's own in the GC figures. */
  const ranNs = () => {
    const n = readSync(schedFd, schedBuf, 0, schedBuf.length, 0);
    let v = 0;
    for (let i = 0; i < n && schedBuf[i] >= 0x30 && schedBuf[i] <= 0x39; i++) v = v * 10 + (schedBuf[i] - 0x30);
    return v;
  };
  let lastRanNs = ranNs();
  let ownMaxNs = 0;
  const check = () => {
    const now = ranNs();
    ownMaxNs = Math.max(ownMaxNs, now - lastRanNs - 1e6);
    lastRanNs = now;
    setTimeout(check, 1).unref();
  };
  setTimeout(check, 1).unref();
  process.on('SIGUSR2', () => {
    const ownMaxMs = Math.max(0, ownMaxNs, ranNs() - lastRanNs - 1e6) / 1e6;
    writeFileSync(`${file}.tmp`, JSON.stringify({
      seq: ++seq, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, ownMaxMs, atUs: Number(process.hrtime.bigint() / 1000n), gc,
    }));
    gc = { minor: 0, major: 0, other: 0 };
    ownMaxNs = 0;
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
// would kill the new image before Node handles it. The re-executed process is the one whose
// command line carries the daemon's flags (DAEMON_NODE_FLAGS in src/daemon/node-flags.ts).
const profFile = process.env.CRIB_BENCH_CPU_PROF;
if (profFile && process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) {
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
