// Reads the CPU profiles bench/stats.ts, bench/ops.ts and bench/status-after-work.ts have their
// daemons write (BENCH_CPU_PROF=dir) and splits each one into the calls' windows, by the RPC each
// window names, and the time between them (the read-ahead, background work, the rest of the
// daemon), from the first call to the last: where each one's CPU went, by function (self time)
// and by the first frame under src/ on the stack (inclusive).
//   npx tsx bench/profile-windows.ts <dir> [crib|base] [top=25]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile { nodes: Node[]; startTime: number; samples: number[]; timeDeltas: number[] }
interface Window { rpc: string; fromUs: number; toUs: number }

const [dir, name = 'crib', topArg = '25'] = process.argv.slice(2);
if (!dir) throw new Error('usage: profile-windows.ts <dir> [crib|base] [top]');
const top = Number(topArg);
const profile = JSON.parse(readFileSync(join(dir, `${name}.cpuprofile`), 'utf8')) as Profile;
const windows = JSON.parse(readFileSync(join(dir, `${name}.windows.json`), 'utf8')) as Window[];

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const label = (n: Node) => {
  const url = n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/');
  return `${n.callFrame.functionName || '(anon)'} ${url}:${n.callFrame.lineNumber + 1}`;
};
/** The innermost frame of our own code (dist/) on the sample's stack. */
const ownFrame = (id: number): string => {
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)!;
    if (n.callFrame.url.includes('/dist/')) return label(n);
  }
  return label(byId.get(id)!);
};

type Bucket = { totalUs: number; self: Map<string, number>; own: Map<string, number> };
const bucket = (): Bucket => ({ totalUs: 0, self: new Map(), own: new Map() });
const buckets: Record<string, Bucket> = Object.fromEntries([...new Set(windows.map((x) => x.rpc)), 'between'].map((k) => [k, bucket()]));
const perCall = new Map<Window, number>();
const first = windows[0]!.fromUs;
const last = windows[windows.length - 1]!.toUs;
const sorted = [...windows].sort((a, b) => a.fromUs - b.fromUs);

let t = profile.startTime;
let w = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]!;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  if (t < first || t > last) continue;
  while (w < sorted.length && sorted[w]!.toUs < t) w++;
  const win = sorted[w] && sorted[w]!.fromUs <= t ? sorted[w] : undefined;
  const node = byId.get(profile.samples[i]!)!;
  if (node.callFrame.functionName === '(idle)') continue;
  const b = win ? buckets[win.rpc]! : buckets.between!;
  if (win) perCall.set(win, (perCall.get(win) ?? 0) + dt);
  b.totalUs += dt;
  const l = label(node);
  b.self.set(l, (b.self.get(l) ?? 0) + dt);
  const o = ownFrame(node.id);
  b.own.set(o, (b.own.get(o) ?? 0) + dt);
}

const ms = (us: number) => (us / 1000).toFixed(1);
for (const [k, b] of Object.entries(buckets)) {
  const calls = k === 'between' ? 1 : windows.filter((x) => x.rpc === k).length;
  console.log(`\n== ${k}: ${ms(b.totalUs)} ms busy${k === 'between' ? '' : ` over ${calls} calls (${ms(b.totalUs / calls)} per call)`}`);
  if (k !== 'between') {
    const busy = windows.filter((x) => x.rpc === k).map((x) => perCall.get(x) ?? 0).sort((a, c) => a - c);
    const wall = windows.filter((x) => x.rpc === k).map((x) => x.toUs - x.fromUs).sort((a, c) => a - c);
    const p = (xs: number[], q: number) => ms(xs[Math.min(xs.length - 1, Math.floor(xs.length * q))]!);
    console.log(`   busy per call p50/p95/max ${p(busy, 0.5)}/${p(busy, 0.95)}/${ms(busy[busy.length - 1]!)} ms; window wall p50/p95/max ${p(wall, 0.5)}/${p(wall, 0.95)}/${ms(wall[wall.length - 1]!)} ms`);
  }
  const show = (m: Map<string, number>, title: string) => {
    console.log(`  -- ${title}`);
    for (const [l, us] of [...m].sort((a, c) => c[1] - a[1]).slice(0, top)) console.log(`  ${ms(us / calls).padStart(8)} ms ${((100 * us) / b.totalUs).toFixed(1).padStart(5)}%  ${l}`);
  };
  show(b.self, 'self');
  show(b.own, 'innermost own frame');
}
