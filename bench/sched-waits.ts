// Where the time of slow calls goes on the whole machine, from a scheduler trace of every CPU
// taken through bench:ops (issue 14: the daemon itself was busy 0.1-0.3 ms in status calls
// that took 2-5 ms). Per operation, the time the client's and the daemon's main threads spent
// runnable but not running inside its calls, by what held the CPU meanwhile: from a wake-up to
// the first run ("behind": another thread of the daemon or of the client, another process, or
// an idle CPU still waking up), and from a preemption to the next run ("preempted by"). Then,
// over the whole run, which threads preempted either main thread, and how often.
//   perf record -a -k mono -e sched:sched_switch,sched:sched_wakeup,sched:sched_wakeup_new \
//     -o DIR/perf.data -- env BENCH_SCHED_TRACE=DIR BENCH_CONTAINERD=0 npm run bench:ops
//   perf script -i DIR/perf.data -F time,cpu,comm,pid,tid,event,trace --ns > DIR/sched.txt
//   npx tsx bench/sched-waits.ts DIR [ops, comma-separated] [slowest]
// (slowest=N: also each op's N slowest calls, one by one: when each main thread ran, on which
// CPU, and what held the CPU each wake-up landed on until it ran.)
// (-k mono: perf's clock is the monotonic one the bench's hrtime reads. bench:ops writes its
// windows, with the client's and crib's pids, to DIR/ops.sched.json.)
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

interface Windows { clientPid: number; daemonPid: number; windows: { rpc: string; fromUs: number; toUs: number }[] }
/** A thread on a CPU from start to end (µs). */
interface Run { cpu: number; start: number; end: number; tid: number }

const [dir, opsArg, slowestArg] = process.argv.slice(2);
if (!dir) throw new Error('usage: sched-waits.ts <dir> [ops] [slowest]');
const slowest = Number(slowestArg ?? 0);
const { clientPid, daemonPid, windows } = JSON.parse(readFileSync(join(dir, 'ops.sched.json'), 'utf8')) as Windows;
const from = windows[0]!.fromUs;
const to = windows[windows.length - 1]!.toUs;

const HEADER = /^\s*(.+?)\s+(\d+)\/(\d+)\s+\[(\d+)\]\s+(\d+\.\d+):\s+(sched:\S+):\s(.*)$/;
const SWITCH = /prev_comm=(.*) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)/;
const WAKEUP = /comm=.* pid=(\d+) prio=\d+ target_cpu=(\d+)/;

const pidOf = new Map<number, number>();
const commOf = new Map<number, string>();
const onCpu = new Map<number, { tid: number; start: number }>();
const runsByCpu = new Map<number, Run[]>();
const runsOfMain = new Map<number, Run[]>([[daemonPid, []], [clientPid, []]]);
/** Each wake-up of a main thread: when, and the CPU it was queued on. */
const wakeups = new Map<number, { t: number; cpu: number }[]>([[daemonPid, []], [clientPid, []]]);
/** A thread switched out while runnable (prev_state R): `preempted` at `t` on `cpu`, for `tid`. */
const preemptions: { tid: number; preempted: number; t: number; cpu: number }[] = [];

const lines = createInterface({ input: createReadStream(join(dir, 'sched.txt')), crlfDelay: Infinity });
for await (const line of lines) {
  const m = HEADER.exec(line);
  if (!m) continue;
  const [, comm, pid, tid, cpuText, time, event, rest] = m;
  const t = Number(time) * 1e6;
  const cpu = Number(cpuText);
  pidOf.set(Number(tid), Number(pid));
  commOf.set(Number(tid), comm!);
  if (event === 'sched:sched_switch') {
    const s = SWITCH.exec(rest!);
    if (!s) continue;
    const prev = onCpu.get(cpu);
    if (prev) {
      const run = { cpu, start: prev.start, end: t, tid: prev.tid };
      if (!runsByCpu.has(cpu)) runsByCpu.set(cpu, []);
      runsByCpu.get(cpu)!.push(run);
      runsOfMain.get(prev.tid)?.push(run);
    }
    const next = Number(s[5]);
    onCpu.set(cpu, { tid: next, start: t });
    commOf.set(next, s[4]!);
    if (s[3]!.startsWith('R') && t >= from && t <= to) preemptions.push({ tid: next, preempted: Number(s[2]), t, cpu });
  } else if (event === 'sched:sched_wakeup' || event === 'sched:sched_wakeup_new') {
    const w = WAKEUP.exec(rest!);
    if (w) wakeups.get(Number(w[1]))?.push({ t, cpu: Number(w[2]) });
  }
}

function who(tid: number): string {
  if (tid === 0) return 'an idle CPU';
  if (tid === daemonPid) return "the daemon's main thread";
  if (tid === clientPid) return "the client's main thread";
  const pid = pidOf.get(tid);
  if (pid === daemonPid) return `a daemon thread (${tid})`;
  if (pid === clientPid) return `a client thread (${tid})`;
  return (commOf.get(tid) ?? '?').replace(/[/:-]\d.*$/, '');
}

/** Adds `n` to `key`'s sum in `sums`. */
function add(sums: Map<string, number>, key: string, n: number): void {
  sums.set(key, (sums.get(key) ?? 0) + n);
}

/** The first run of `runs` (sorted by start) that starts at or after `t`. */
function firstRunFrom(runs: Run[], t: number): Run | undefined {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid]!.start < t) lo = mid + 1;
    else hi = mid;
  }
  return runs[lo];
}

/** What held `cpu` from `a` to `b`, by who(), in µs. */
function holders(cpu: number, a: number, b: number, into: Map<string, number>): void {
  const runs = runsByCpu.get(cpu) ?? [];
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid]!.end <= a) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < runs.length && runs[i]!.start < b; i++) {
    const r = runs[i]!;
    const overlap = Math.min(r.end, b) - Math.max(r.start, a);
    if (overlap > 0) add(into, who(r.tid), overlap);
  }
}

/**
 * The wake-ups of `main` inside `w` that waited for a CPU: each with the run that ended the wait
 * and what held the CPU it was queued on meanwhile (a thread the balancer later moved to another
 * CPU waited behind that one, not behind what the other CPU did meanwhile).
 */
function* wakeupWaits(main: number, w: Windows['windows'][number]): Generator<{ t: number; cpu: number; run: Run; held: Map<string, number> }> {
  for (const { t, cpu } of wakeups.get(main)!) {
    if (t < w.fromUs || t > w.toUs) continue;
    const run = firstRunFrom(runsOfMain.get(main)!, t);
    // A wake-up answered within 30 µs is the scheduler's normal cost, not a wait.
    if (!run || run.start - t < 30) continue;
    const held = new Map<string, number>();
    holders(cpu, t, run.start, held);
    yield { t, cpu, run, held };
  }
}

/** The `k` slowest of `ws`, each as the timeline of both main threads inside its window (µs from its start). */
function printSlowest(ws: Windows['windows'], k: number): void {
  const slow = [...ws].sort((a, b) => (b.toUs - b.fromUs) - (a.toUs - a.fromUs)).slice(0, k);
  for (const w of slow) {
    const at = (t: number) => Math.round(t - w.fromUs);
    const lines: [number, string][] = [];
    for (const [main, label] of [[daemonPid, 'daemon'], [clientPid, 'client']] as const) {
      for (const r of runsOfMain.get(main)!) {
        if (r.end <= w.fromUs || r.start >= w.toUs) continue;
        lines.push([r.start, `${label} ran ${at(Math.max(r.start, w.fromUs))}-${at(Math.min(r.end, w.toUs))} on cpu${r.cpu}`]);
      }
      for (const { t, cpu, run, held } of wakeupWaits(main, w)) {
        const behind = [...held].map(([who_, us]) => `${who_} ${Math.round(us)}`).join(', ');
        const where = run.cpu === cpu ? `on cpu${cpu}` : `queued on cpu${cpu}, ran on cpu${run.cpu}`;
        lines.push([t, `${label} woken at ${at(t)}, ran ${Math.round(run.start - t)} later (${where}), behind: ${behind || 'nothing traced'}`]);
      }
    }
    console.log(`  a call of ${((w.toUs - w.fromUs) / 1000).toFixed(2)} ms (µs from its start):`);
    for (const [, line] of lines.sort((a, b) => a[0] - b[0])) console.log(`    ${line}`);
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const ops = opsArg ? opsArg.split(',') : [...new Set(windows.map((w) => w.rpc))];
for (const op of ops) {
  const ws = windows.filter((w) => w.rpc === op);
  if (ws.length === 0) continue;
  const waits = new Map<string, number>();
  for (const w of ws) {
    for (const [main, label] of [[daemonPid, 'daemon'], [clientPid, 'client']] as const) {
      for (const { held } of wakeupWaits(main, w)) {
        for (const [k, us] of held) add(waits, `${label} behind ${k}`, us);
      }
    }
  }
  // A main thread preempted inside the window waits too, until it runs again.
  for (const p of preemptions) {
    const label = p.preempted === daemonPid ? 'daemon' : p.preempted === clientPid ? 'client' : undefined;
    if (!label || !ws.some((w) => p.t >= w.fromUs && p.t <= w.toUs)) continue;
    const run = firstRunFrom(runsOfMain.get(p.preempted)!, p.t);
    if (!run) continue;
    const held = new Map<string, number>();
    holders(p.cpu, p.t, run.start, held);
    for (const [k, us] of held) add(waits, `${label} preempted by ${k}`, us);
  }
  const lat = ws.map((w) => w.toUs - w.fromUs);
  const top = [...waits].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, us]) => `${k} ${(us / 1000).toFixed(1)}`);
  console.log(`${op.padEnd(18)} median ${(pct(lat, 0.5) / 1000).toFixed(2)} p95 ${(pct(lat, 0.95) / 1000).toFixed(2)} ms; main threads' waits for a CPU over its ${ws.length} calls, woken or preempted (ms): ${top.join(', ') || 'none'}`);
  if (slowest > 0) printSlowest(ws, slowest);
}

for (const [main, label] of [[daemonPid, "daemon's"], [clientPid, "client's"]] as const) {
  const by = new Map<string, number>();
  for (const p of preemptions) if (p.preempted === main) add(by, who(p.tid), 1);
  const list = [...by].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `${k} ${n}`);
  console.log(`\npreemptions of the ${label} main thread from the first call to the last: ${list.join(', ') || 'none'}`);
}
