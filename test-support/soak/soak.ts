// `npm run soak`: a real daemon under random pod and container calls from several kubelet-like
// workers, killed with SIGKILL at random moments (and restarted on the same root), with random
// container monitors killed too. After each restart, each monitor kill and at the end, once no
// call is in flight, what the daemon reports is held against the node (test-support/node-truth.ts)
// and every difference printed; the calls a kill interrupted are retried as kubelet would.
// Exits 1 when anything differed or a call failed that no kill explains.
//   SOAK_MINUTES        run time (default 30)
//   SOAK_WORKERS        concurrent workers, each owning up to 4 pods (default 3)
//   SOAK_KILL_EVERY     mean seconds between daemon kills (default 45; 0: none)
//   SOAK_MONITOR_EVERY  mean seconds between monitor kills (default 30; 0: none)
//   SOAK_SEED           seed of the random choices (default: from the clock; printed)
//   SOAK_KEEP_LOGS=1    keep the daemon logs even when the run passes
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeCgroupParent, startDaemon, type TestDaemon } from '../daemon.js';
import { pushBusybox } from '../image-builder.js';
import { checkNodeTruth, knownFromDisk, type KnownIds } from '../node-truth.js';
import { startRegistry } from '../registry.js';
import { Gate, describeError, randomSource, sleep, type SoakNode } from './node.js';
import { SoakWorker, type OpCounts } from './worker.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const WORKERS = Number(process.env.SOAK_WORKERS ?? 3);
const KILL_EVERY_S = Number(process.env.SOAK_KILL_EVERY ?? 45);
const MONITOR_EVERY_S = Number(process.env.SOAK_MONITOR_EVERY ?? 30);
const SEED = Number(process.env.SOAK_SEED ?? Date.now() % 2 ** 31);
/** How long the node may take to settle (exits to be read, a dead monitor noticed) before a
 * difference counts: the daemon answers Version before its recovery's last exit is read. */
const SETTLE_MS = 10_000;
/** A restart reads every record and exit back; on a busy 2-core machine that takes seconds. */
const RESTART_TIMEOUT_MS = 60_000;
/** Deadline of the chaos's own calls. */
const CALL_DEADLINE_MS = 30_000;

const random = randomSource(SEED);
const t0 = performance.now();
const stamp = () => {
  const s = Math.floor((performance.now() - t0) / 1000);
  return `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}]`;
};
const say = (msg: string) => console.log(`${stamp()} ${msg}`);
/** Exponentially distributed wait with the given mean, so kills land anywhere in a call. */
const nextWait = (meanS: number) => -Math.log(1 - random()) * meanS * 1000;

const divergences: string[] = [];
const transient: string[] = [];
const retryFailures: string[] = [];
let daemonKills = 0;
let monitorKills = 0;
let daemonLogs = 0;

async function main(): Promise<number> {
  const workDir = await mkdtemp(join(tmpdir(), 'crib-soak-'));
  const logDir = join(workDir, 'logs');
  say(`soak: ${MINUTES} min, ${WORKERS} workers, daemon kill every ~${KILL_EVERY_S} s, monitor kill every ~${MONITOR_EVERY_S} s, seed ${SEED}; files in ${workDir}`);
  const registry = await startRegistry();
  let node: SoakNode | undefined;
  let failed = true;
  try {
    await pushBusybox(registry, 'library/busybox', 'latest');
    await pushBusybox(registry, 'library/spare', 'v1', { config: { Env: ['SPARE=1'] } });
    const d = await startDaemon({ dir: join(workDir, 'node'), logLevel: 'info' });
    node = {
      d, epoch: 0, gate: new Gate(),
      image: `${registry.host}/library/busybox:latest`, spareImage: `${registry.host}/library/spare:v1`,
      known: { pods: new Set(), containers: new Set() }, monitorKills: new Map(),
    };
    await d.cri.image.PullImage({ image: { image: node.image } });
    failed = await soak(node, logDir, workDir);
  } finally {
    if (node) {
      await saveDaemonLog(node.d, workDir);
      let last: TestDaemon | undefined = node.d;
      if (last.proc.exitCode !== null || last.proc.signalCode !== null) {
        // The run ended with the daemon dead (it did not come back from a kill): one more try,
        // so that its cleanup removes the pods rather than leaving their processes and mounts.
        last = await startDaemon({ dir: last.dir, logLevel: 'info', startTimeoutMs: RESTART_TIMEOUT_MS }).catch((err) => {
          say(`the daemon does not start: its pods, mounts and network are left in ${workDir}/node for inspection: ${describeError(err)}`);
          return undefined;
        });
      }
      await last?.cleanup();
    }
    await registry.stop();
    await removeCgroupParent('crib');
    if (failed || process.env.SOAK_KEEP_LOGS === '1') say(`daemon logs kept in ${workDir}`);
    else await rm(workDir, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

async function soak(node: SoakNode, logDir: string, workDir: string): Promise<boolean> {
  const workers = Array.from({ length: WORKERS }, (_, i) => new SoakWorker(i, node, randomSource(SEED + i + 1), logDir));
  const end = performance.now() + MINUTES * 60_000;
  let stopping = false;
  process.once('SIGINT', () => {
    say('SIGINT: finishing early');
    stopping = true;
  });
  const running = () => !stopping && performance.now() < end;

  const work = workers.map(async (w) => {
    while (running()) {
      await w.step();
      await sleep(random() * 200);
    }
  });
  const chaos = (async () => {
    let nextDaemonKill = KILL_EVERY_S > 0 ? performance.now() + nextWait(KILL_EVERY_S) : Infinity;
    let nextMonitorKill = MONITOR_EVERY_S > 0 ? performance.now() + nextWait(MONITOR_EVERY_S) : Infinity;
    while (running()) {
      await sleep(Math.max(0, Math.min(nextDaemonKill, nextMonitorKill, end) - performance.now()));
      if (!running()) break;
      if (performance.now() >= nextDaemonKill) {
        await killDaemon(node, workers, workDir);
        nextDaemonKill = performance.now() + nextWait(KILL_EVERY_S);
      } else if (performance.now() >= nextMonitorKill) {
        await killMonitor(node);
        nextMonitorKill = performance.now() + nextWait(MONITOR_EVERY_S);
      }
    }
  })();
  await Promise.all([...work, chaos]);

  say('run over: checking the node');
  node.gate.shut();
  await node.gate.drained();
  retryFailures.push(...(await retryAll(workers)));
  await checkTruth(node, 'at the end');
  say('removing every pod');
  for (const w of workers) {
    await w.removeAll().catch((err) => retryFailures.push(`removing worker pods at the end: ${describeError(err)}`));
  }
  const left = await node.d.cri.runtime.ListPodSandbox({}, { deadline: Date.now() + CALL_DEADLINE_MS });
  if (left.items.length) divergences.push(`at the end: ${left.items.length} pods still listed after removing every pod`);
  await checkTruth(node, 'after removing everything');
  return report(workers);
}

/** SIGKILL the daemon at a random point of the calls in flight, restart it on the same root,
 * check the node once quiet and retry what was interrupted. */
async function killDaemon(node: SoakNode, workers: SoakWorker[], workDir: string): Promise<void> {
  daemonKills++;
  // New calls wait from now; those in flight meet the kill.
  node.gate.shut();
  node.epoch++;
  const old = node.d;
  await old.stop('SIGKILL');
  await node.gate.drained();
  // What the dead daemon had begun (records, dirs, pinned namespaces): all must end in the truth.
  // The namespaces only for the check right after the restart: once freed, a namespace's inode
  // number is given to the next new one, and a later pod's init would seem to sit in it.
  const onDisk = knownFromDisk(old);
  for (const id of onDisk.pods) node.known.pods.add(id);
  for (const id of onDisk.containers) node.known.containers.add(id);
  await saveDaemonLog(old, workDir);
  const t = performance.now();
  try {
    node.d = await startDaemon({ dir: old.dir, logLevel: 'info', startTimeoutMs: RESTART_TIMEOUT_MS });
  } catch (err) {
    divergences.push(`after daemon kill #${daemonKills}: the daemon did not start again: ${describeError(err)}`);
    throw err;
  }
  const cut = workers.flatMap((w) => w.pendingRetries());
  say(`daemon kill #${daemonKills}: restarted in ${((performance.now() - t) / 1000).toFixed(1)} s; interrupted: ${cut.join(', ') || 'no call'}`);
  await checkTruth(node, `after daemon kill #${daemonKills}`, onDisk.podNamespaces);
  const wrong = await retryAll(workers);
  if (wrong.length) say(`  ${wrong.length} interrupted calls could not be finished:\n    ${wrong.join('\n    ')}`);
  retryFailures.push(...wrong);
  node.gate.open();
}

/** SIGKILL the monitor of a random running container; the daemon must notice on its own. */
async function killMonitor(node: SoakNode): Promise<void> {
  const deadline = { deadline: Date.now() + CALL_DEADLINE_MS };
  const { containers } = await node.d.cri.runtime.ListContainers({ filter: { state: { state: 'CONTAINER_RUNNING' } } }, deadline)
    .catch(() => ({ containers: [] }));
  if (!containers.length) return;
  const c = containers[Math.floor(random() * containers.length)] as { id: string };
  const st = await node.d.cri.runtime.ContainerStatus({ containerId: c.id, verbose: true }, deadline).catch(() => undefined);
  const monitorPid = (JSON.parse(st?.info?.info ?? '{}') as { monitorPid?: number }).monitorPid ?? 0;
  // Only a process that is this container's monitor: a pid the report names may be reused.
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${monitorPid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (monitorPid <= 0 || !cmdline.includes(c.id) || !cmdline.includes('crib-monitor')) return;
  try {
    process.kill(monitorPid, 'SIGKILL');
  } catch {
    return;
  }
  monitorKills++;
  node.monitorKills.set(c.id, performance.now());
  say(`monitor kill #${monitorKills}: container ${c.id.slice(0, 12)} (monitor ${monitorPid})`);
  node.gate.shut();
  await node.gate.drained();
  await checkTruth(node, `after monitor kill #${monitorKills}`);
  node.gate.open();
}

async function retryAll(workers: SoakWorker[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const w of workers) wrong.push(...(await w.retryInterrupted()));
  return wrong;
}

/**
 * Holds the report against the node; what a check begun after SETTLE_MS still finds is a
 * divergence. A check reads the daemon's report first and the node after it, and on a busy
 * node it can take seconds: one begun before the settle time ended may hold a report read
 * before the node settled, so it only counts when a fresh check agrees.
 */
async function checkTruth(node: SoakNode, when: string, podNamespaces?: KnownIds['podNamespaces']): Promise<void> {
  const began = performance.now();
  const until = began + SETTLE_MS;
  let first: string[] | undefined;
  let checks = 0;
  let longestMs = 0;
  const timing = () => `${checks} checks in ${((performance.now() - began) / 1000).toFixed(1)} s, the longest ${(longestMs / 1000).toFixed(1)} s`;
  for (;;) {
    const checkBegan = performance.now();
    let wrong: string[];
    try {
      wrong = await checkNodeTruth(node.d, { ...node.known, podNamespaces });
    } catch (err) {
      wrong = [`the report could not be read: ${describeError(err)}`];
    }
    checks++;
    longestMs = Math.max(longestMs, performance.now() - checkBegan);
    first ??= wrong;
    if (wrong.length === 0) {
      if (first.length) {
        say(`  truth ${when}: settled after ${first.length} transient differences (${timing()})`);
        transient.push(...first.map((w) => `${when}: ${w}`));
      }
      return;
    }
    if (checkBegan > until) {
      say(`  truth ${when}: ${wrong.length} DIVERGENCES (${timing()}):\n    ${wrong.join('\n    ')}`);
      divergences.push(...wrong.map((w) => `${when}: ${w}`));
      return;
    }
    await sleep(Math.min(500, Math.max(0, until - performance.now()) + 1));
  }
}

async function saveDaemonLog(d: TestDaemon, workDir: string): Promise<void> {
  await writeFile(join(workDir, `daemon-${daemonLogs++}.log`), d.output()).catch(() => undefined);
}

function report(workers: SoakWorker[]): boolean {
  const totals = new Map<string, OpCounts>();
  for (const w of workers) {
    for (const [name, c] of w.counts) {
      const t = totals.get(name) ?? { ok: 0, failed: 0, interrupted: 0, excused: 0 };
      for (const k of Object.keys(c) as (keyof OpCounts)[]) t[k] += c[k];
      totals.set(name, t);
    }
  }
  const failures = workers.flatMap((w) => w.failures);
  let ops = 0;
  const rows = [...totals].sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => {
    ops += c.ok + c.failed + c.interrupted + c.excused;
    return `  ${name.padEnd(24)} ok ${String(c.ok).padStart(5)}  failed ${String(c.failed).padStart(3)}  interrupted ${String(c.interrupted).padStart(3)}  excused ${String(c.excused).padStart(3)}`;
  });
  console.log(`\nsoak summary (seed ${SEED}, ${((performance.now() - t0) / 60_000).toFixed(1)} min)`);
  console.log(`  ${ops} calls, ${daemonKills} daemon kills, ${monitorKills} monitor kills, ${WORKERS} workers`);
  console.log(rows.join('\n'));
  console.log(`  (excused: failed on a container whose monitor had just been killed)`);
  const section = (title: string, xs: string[]) => console.log(`\n${title}: ${xs.length}${xs.length ? `\n  ${xs.join('\n  ')}` : ''}`);
  section('transient differences (gone within the settle time)', transient);
  section('failed calls no kill explains', failures);
  section('interrupted calls that could not be finished', retryFailures);
  section('DIVERGENCES', divergences);
  return divergences.length > 0 || failures.length > 0 || retryFailures.length > 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(2);
});
