// What a test daemon reports, held against what is really on the node: processes, mounts,
// namespaces, veths, nftables rules, cgroups, IPAM, records and dirs. kubelet acts on what the
// runtime reports, so after a crash, a restart or a load run every difference is a bug.
//
//   const wrong = await checkNodeTruth(d);          // [] when the report is the truth
//   expect(wrong).toEqual([]);
//
// Call it when no call is in flight (a pod half-way through RunPodSandbox is, rightly, in
// neither state). `known` names pods and containers the test saw earlier: those the daemon no
// longer lists must have left nothing behind (their cgroups, veths, processes, addresses).
// Only the built-in bridge network is checked (not CNI).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultRuntimeRoot } from '../src/runtime/runtime-registry.js';
import { RUNTIME, mountTemplateDir, type TestDaemon } from './daemon.js';

const run = promisify(execFile);
const ID = /[0-9a-f]{64}/g;

export interface KnownIds {
  pods?: Iterable<string>;
  containers?: Iterable<string>;
  /** Inodes of pods' pinned namespaces, by pod id (pinnedNamespaces): a crib-pod-init left in
   * one of a pod no longer reported is a leak even after the pinned files are gone. */
  podNamespaces?: Map<string, number[]>;
}

/**
 * The pods and containers a daemon's dirs and records hold now, with their pinned namespaces:
 * read it before a crash or restart, hand it to checkNodeTruth after.
 */
export function knownFromDisk(d: TestDaemon): Required<KnownIds> {
  const jsonIds = (dir: string) => listDir(dir).filter((f) => /^[0-9a-f]{64}\.json$/.test(f)).map((f) => f.slice(0, 64));
  return {
    pods: new Set([...listDir(join(d.state, 'pods')), ...jsonIds(join(d.root, 'pods'))]),
    containers: new Set([...listDir(join(d.state, 'containers')), ...jsonIds(join(d.root, 'containers'))]),
    podNamespaces: pinnedNamespaces(d.state),
  };
}

/** Two KnownIds in one. */
export function mergeKnown(a: KnownIds, b: KnownIds): KnownIds {
  return {
    pods: new Set([...(a.pods ?? []), ...(b.pods ?? [])]),
    containers: new Set([...(a.containers ?? []), ...(b.containers ?? [])]),
    podNamespaces: new Map([...(a.podNamespaces ?? []), ...(b.podNamespaces ?? [])]),
  };
}

interface ReportedPod {
  id: string;
  ready: boolean;
  ip: string;
  initPid: number;
  sharedPid: boolean;
  hostNetwork: boolean;
  netns?: string;
  cgroupParent: string;
}

interface ReportedContainer {
  id: string;
  podId: string;
  state: string;
  pid: number;
  monitorPid: number;
}

/** The host-side veth of a pod (src/network/veth.ts names it so). */
export function hostVethName(podId: string): string {
  return `crib${createHash('sha256').update(podId).digest('hex').slice(0, 8)}`;
}

/** /proc/<pid>/stat's state field, or undefined when there is no such process. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie. */
export function processAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X';
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
}

/** Live processes whose command line mentions `text` (monitors and runtimes name their bundle). */
export function processesMentioning(text: string, except: number[] = []): number[] {
  return pids().filter((p) => !except.includes(p) && processAlive(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text);
    } catch {
      return false;
    }
  });
}

/** Inode of a namespace (a pinned nsfs file or /proc/<pid>/ns/<kind>), or undefined. */
function nsInode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** Live crib-pod-init processes, with the inodes of their net, ipc and uts namespaces. */
export function podInits(): { pid: number; ns: number[] }[] {
  return pids().filter((p) => comm(p) === 'crib-pod-init' && processAlive(p)).map((pid) => ({
    pid,
    ns: ['net', 'ipc', 'uts'].map((k) => nsInode(`/proc/${pid}/ns/${k}`)).filter((i): i is number => i !== undefined),
  }));
}

/** Inodes of the namespaces pinned under a daemon's state dir, by pod id. */
export function pinnedNamespaces(state: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const id of listDir(join(state, 'pods'))) {
    const inodes = ['net', 'ipc', 'uts'].map((k) => join(state, 'pods', id, 'ns', k)).filter(isNsMount).map(nsInode)
      .filter((i): i is number => i !== undefined);
    if (inodes.length) out.set(id, inodes);
  }
  return out;
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[4]!.replace(/\\040/g, ' '));
}

function isNsMount(path: string): boolean {
  try {
    // A pinned namespace is a bind mount of nsfs: its device is nsfs's, not the dir's.
    return statSync(path).dev !== statSync(join(path, '..')).dev;
  } catch {
    return false;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Where a container's cgroup is (its memory controller's dir on cgroup v1), as crib-runtime makes it. */
export function cgroupDir(parent: string, containerId: string): string {
  const p = parent === '' ? '/crib' : parent;
  const rel = join(p, `crib-${containerId}`);
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? join('/sys/fs/cgroup', rel) : join('/sys/fs/cgroup/memory', rel);
}

async function reported(d: TestDaemon): Promise<{ pods: ReportedPod[]; containers: ReportedContainer[] }> {
  const deadline = () => ({ deadline: Date.now() + 10_000 });
  const pods: ReportedPod[] = [];
  for (const p of (await d.cri.runtime.ListPodSandbox({}, deadline())).items) {
    const st = await d.cri.runtime.PodSandboxStatus({ podSandboxId: p.id, verbose: true }, deadline());
    const info = JSON.parse(st.info.info ?? '{}') as {
      pid?: number; netns?: string; config?: { linux?: { cgroupParent?: string; securityContext?: { namespaceOptions?: { pid?: string; network?: string } } } };
    };
    const nsOpts = info.config?.linux?.securityContext?.namespaceOptions;
    pods.push({
      id: p.id, ready: p.state === 'SANDBOX_READY', ip: st.status.network?.ip ?? '', initPid: info.pid ?? 0,
      sharedPid: nsOpts?.pid === 'POD', hostNetwork: nsOpts?.network === 'NODE', netns: info.netns,
      cgroupParent: info.config?.linux?.cgroupParent ?? '',
    });
  }
  const containers: ReportedContainer[] = [];
  for (const c of (await d.cri.runtime.ListContainers({}, deadline())).containers) {
    const st = await d.cri.runtime.ContainerStatus({ containerId: c.id, verbose: true }, deadline());
    const info = JSON.parse(st.info.info ?? '{}') as { pid?: number; monitorPid?: number };
    containers.push({ id: c.id, podId: c.podSandboxId, state: st.status.state, pid: info.pid ?? 0, monitorPid: info.monitorPid ?? 0 });
  }
  return { pods, containers };
}

async function runtimeStatus(d: TestDaemon, id: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(RUNTIME, ['--root', defaultRuntimeRoot(d.state, 'crib'), 'state', id]);
    return (JSON.parse(stdout) as { status: string }).status;
  } catch {
    return undefined;
  }
}

function sameSet(what: string, want: Iterable<string>, have: Iterable<string>, out: string[]): void {
  const w = new Set(want);
  const h = new Set(have);
  for (const x of h) if (!w.has(x)) out.push(`${what}: ${x} exists but is not reported`);
  for (const x of w) if (!h.has(x)) out.push(`${what}: ${x} is reported but missing`);
}

/**
 * Every way the daemon's report differs from the node; [] when it tells the truth. Messages name
 * the pod or container and the thing that differs.
 */
export async function checkNodeTruth(d: TestDaemon, known: KnownIds = {}): Promise<string[]> {
  // A stopped or removed pod's veth delete, and after it the release of its host ports' state
  // and addresses, run in the background (src/network/pod-network.ts teardown: its rules are gone
  // before the call answers), and so do the deletions of what removed
  // containers leave (their dirs, rootfs mounts, writable layers, removal markers, the runtime's
  // delete: the container service's deletion queue; a removed pod's own dir and mounts are gone
  // before its removal answers). While only those differ, give them time to land before calling
  // the difference a lie: 5 s without one of them landing (a release or deletion that is stuck),
  // or a minute in all. After a burst of removals (250 pods) both are queues that drain steadily
  // but may need more than 5 s in all.
  const releasing = (m: string) => new RegExp(
    '^(IPAM allocation|veth on the bridge|container dir|container removal marker|writable layer|rootfs mount): .* exists but is not reported$' +
      '|is not reported but its veth|^mount .* belongs to nothing reported$|^process mentioning .* is running, which is not reported$' +
      '|^hostPort state of pod .*, which is not READY$',
  ).test(m);
  const start = Date.now();
  let fewest = Infinity;
  let lastLanded = start;
  for (;;) {
    const out = await checkNodeTruthOnce(d, known);
    if (out.length === 0 || !out.every(releasing)) return out;
    const now = Date.now();
    if (out.length < fewest) {
      fewest = out.length;
      lastLanded = now;
    }
    if (now - lastLanded > 5_000 || now - start > 60_000) return out;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function checkNodeTruthOnce(d: TestDaemon, known: KnownIds): Promise<string[]> {
  const out: string[] = [];
  const { pods, containers } = await reported(d);
  const podIds = new Set(pods.map((p) => p.id));
  const ctrIds = new Set(containers.map((c) => c.id));
  const readyNetPods = pods.filter((p) => p.ready && !p.hostNetwork);

  // ---- records, dirs, snapshots, mounts: one of each per reported pod or container ----
  const jsonIds = (dir: string) => listDir(dir).filter((f) => /^[0-9a-f]{64}\.json$/.test(f)).map((f) => f.slice(0, 64));
  sameSet('pod record', podIds, jsonIds(join(d.root, 'pods')), out);
  // A removal renames the record to <id>.json.removing; a record write in flight then may make
  // <id>.json again beside it for a moment (src/container/container-records.ts, retire). Both
  // are a removal still running: they must be gone soon, like the removal's other leftovers.
  const markedIds = listDir(join(d.root, 'containers')).filter((f) => /^[0-9a-f]{64}\.json\.removing$/.test(f)).map((f) => f.slice(0, 64));
  const removing = new Set(markedIds.filter((id) => !ctrIds.has(id)));
  sameSet('container record', ctrIds, jsonIds(join(d.root, 'containers')).filter((id) => !removing.has(id)), out);
  for (const id of markedIds) {
    out.push(ctrIds.has(id) ? `container ${id} is reported but its record is marked removed` : `container removal marker: ${id} exists but is not reported`);
  }
  sameSet('pod dir', podIds, listDir(join(d.state, 'pods')), out);
  sameSet('container dir', ctrIds, listDir(join(d.state, 'containers')), out);
  sameSet('writable layer', ctrIds, listDir(join(d.root, 'snapshots', 'active')).filter((n) => /^[0-9a-f]{64}$/.test(n)), out);
  const mounts = mountPoints();
  const rootfsMounted = mounts.filter((m) => m.startsWith(join(d.state, 'containers') + '/') && m.endsWith('/bundle/rootfs'))
    .map((m) => m.slice(join(d.state, 'containers').length + 1, -'/bundle/rootfs'.length));
  sameSet('rootfs mount', ctrIds, rootfsMounted, out);
  // The runtime's template mount namespace, made when the daemon started, pins one namespace
  // on a private bind of its dir (native/src/mount-template.h): both there, nothing else below.
  const template = mountTemplateDir(d);
  const templateMounts = mounts.filter((m) => m === template || m.startsWith(template + '/'));
  if (templateMounts.join() !== [template, join(template, 'ns')].join()) {
    out.push(`the runtime's template mount namespace: mounts ${JSON.stringify(templateMounts)}, not its dir and its pin`);
  }
  for (const m of mounts) {
    const under = [d.state, d.root].find((dir) => m.startsWith(dir + '/'));
    if (!under || templateMounts.includes(m)) continue;
    const ids = m.match(ID) ?? [];
    if (ids.length === 0 || !ids.some((i) => podIds.has(i) || ctrIds.has(i))) out.push(`mount ${m} belongs to nothing reported`);
  }
  for (const p of pods) {
    const podDir = join(d.state, 'pods', p.id);
    if (p.ready) {
      if (!p.hostNetwork && !isNsMount(join(podDir, 'ns', 'net'))) out.push(`pod ${p.id}: its network namespace is not pinned`);
    } else {
      // A stopped pod has released its namespaces and /dev/shm (sandbox-service.ts
      // releaseStoppedPod); start-up releases those a crash kept.
      for (const m of mounts.filter((m) => m.startsWith(podDir + '/'))) out.push(`pod ${p.id} is NOTREADY, yet ${m} is still mounted`);
    }
  }

  // ---- processes: monitors and container processes of reported containers only ----
  const mentioned = new Set(processesMentioning(d.state, [process.pid, d.proc.pid ?? -1]).flatMap((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').match(ID) ?? [];
    } catch {
      return [];
    }
  }));
  for (const id of mentioned) if (!ctrIds.has(id) && !podIds.has(id)) out.push(`process mentioning ${id} is running, which is not reported`);
  for (const c of containers) {
    const alive = c.pid > 0 && processAlive(c.pid);
    if (c.state === 'CONTAINER_CREATED' && c.pid === 0 && c.monitorPid === 0) {
      // Created and not started: the runtime's create is StartContainer's, so nothing of the
      // container may run or be in the runtime (a parked process has its pid reported).
      if (mentioned.has(c.id)) out.push(`container ${c.id} is reported CREATED without a process but a process mentioning it runs`);
      const rt = await runtimeStatus(d, c.id);
      if (rt !== undefined) out.push(`container ${c.id} is reported CREATED without a process but the runtime says ${rt}`);
      const cg = cgroupDir(pods.find((p) => p.id === c.podId)?.cgroupParent ?? '', c.id);
      if (existsSync(cg)) out.push(`container ${c.id} is reported CREATED without a process but its cgroup ${cg} exists`);
    } else if (c.state === 'CONTAINER_RUNNING' || c.state === 'CONTAINER_CREATED') {
      if (!alive) out.push(`container ${c.id} is reported ${c.state} but its process ${c.pid} is gone`);
      if (!(c.monitorPid > 0 && processAlive(c.monitorPid))) out.push(`container ${c.id} is reported ${c.state} but its monitor ${c.monitorPid} is gone`);
      const rt = await runtimeStatus(d, c.id);
      const want = c.state === 'CONTAINER_CREATED' ? 'created' : 'running';
      if (alive && rt !== want) out.push(`container ${c.id} is reported ${c.state} but the runtime says ${rt ?? 'nothing'}`);
      if (!existsSync(cgroupDir(pods.find((p) => p.id === c.podId)?.cgroupParent ?? '', c.id))) out.push(`container ${c.id} is reported ${c.state} but has no cgroup`);
    } else if (c.state === 'CONTAINER_EXITED') {
      if (alive) out.push(`container ${c.id} is reported EXITED but its process ${c.pid} runs`);
    } else {
      out.push(`container ${c.id} is reported ${c.state}`);
    }
  }
  for (const id of known.containers ?? []) {
    if (ctrIds.has(id)) continue;
    if (existsSync(cgroupDir('', id))) out.push(`container ${id} is not reported but its cgroup ${cgroupDir('', id)} exists`);
  }

  // ---- pod inits: one per ready shared-PID pod, none for anything else of ours ----
  const inits = podInits();
  const pinned = pinnedNamespaces(d.state);
  // Namespaces of pods gone by now: checked only for inits no current pod explains, as the
  // kernel hands a freed namespace's inode number to a new namespace.
  const gone = [...(known.podNamespaces ?? [])].filter(([podId]) => !pinned.has(podId));
  for (const init of inits) {
    const current = [...pinned].find(([, inodes]) => init.ns.some((i) => inodes.includes(i)));
    if (current) {
      const p = pods.find((x) => x.id === current[0]);
      if (!p) out.push(`crib-pod-init ${init.pid} is in the namespaces of pod ${current[0]}, which is not reported`);
      else if (!p.ready || p.initPid !== init.pid) out.push(`crib-pod-init ${init.pid} runs in pod ${p.id} (${p.ready ? 'READY' : 'NOTREADY'}, pod init ${p.initPid})`);
      continue;
    }
    if (pods.some((p) => p.initPid === init.pid)) continue;
    // All of them: one inode number alone may since name another pod's namespace.
    const was = gone.find(([, inodes]) => inodes.every((i) => init.ns.includes(i)));
    if (was) out.push(`crib-pod-init ${init.pid} is in the namespaces of pod ${was[0]}, which is not reported`);
  }
  for (const p of pods) {
    const initAlive = p.initPid > 0 && processAlive(p.initPid) && comm(p.initPid) === 'crib-pod-init';
    if (p.ready && p.sharedPid && !initAlive) out.push(`pod ${p.id} is READY with a shared PID namespace but its pod init ${p.initPid} is gone`);
    if (!p.ready && initAlive) out.push(`pod ${p.id} is NOTREADY but its pod init ${p.initPid} runs`);
  }

  // ---- network: addresses, veths, rules for ready pods only ----
  const ipam = readJson<{ allocations?: Record<string, string> }>(join(d.root, 'network', 'ipam.json'))?.allocations ?? {};
  sameSet('IPAM allocation', readyNetPods.map((p) => `${p.id}=${p.ip}`), Object.entries(ipam).map(([k, v]) => `${k}=${v}`), out);
  for (const p of pods) if (!p.ready && p.ip) out.push(`pod ${p.id} is NOTREADY but reports IP ${p.ip}`);
  let ports: string[] = [];
  try {
    const { stdout } = await run('ip', ['-j', 'link', 'show', 'master', d.bridge]);
    ports = (JSON.parse(stdout || '[]') as { ifname: string }[]).map((l) => l.ifname);
  } catch {
    /* no bridge yet: no ports */
  }
  sameSet('veth on the bridge', readyNetPods.map((p) => hostVethName(p.id)), ports, out);
  // Every pod ever seen is looked for: by sysfs, not an `ip` process each (a soak run sees
  // thousands, and a check that takes seconds reads a report that is seconds old).
  for (const id of known.pods ?? []) {
    if (podIds.has(id)) continue;
    if (existsSync(join('/sys/class/net', hostVethName(id)))) out.push(`pod ${id} is not reported but its veth ${hostVethName(id)} exists`);
  }
  for (const p of readyNetPods) {
    if (!p.netns || !p.ip) {
      out.push(`pod ${p.id} is READY without a network namespace or IP`);
      continue;
    }
    const { stdout } = await run('nsenter', [`--net=${p.netns}`, 'ip', '-j', '-4', 'addr', 'show', 'eth0']).catch(() => ({ stdout: '' }));
    const addrs = stdout ? (JSON.parse(stdout) as { addr_info: { local: string }[] }[]).flatMap((l) => l.addr_info.map((a) => a.local)) : [];
    if (!addrs.includes(p.ip)) out.push(`pod ${p.id} is READY with IP ${p.ip} but its eth0 has ${addrs.join(', ') || 'no address'}`);
  }
  const { stdout: rules } = await run('nft', ['list', 'table', 'ip', d.nftTable]).catch(() => ({ stdout: '' }));
  const readyIps = new Set(readyNetPods.map((p) => p.ip));
  const prefix = d.podCidr.split('.').slice(0, 3).join('.') + '.';
  const gateway = `${prefix}1`;
  // Single addresses only: the table's own rules name the pod CIDR (a.b.c.0/24).
  for (const ip of new Set(rules.match(/\b\d+\.\d+\.\d+\.\d+\b(?!\/)/g) ?? [])) {
    if (ip.startsWith(prefix) && ip !== gateway && !readyIps.has(ip)) out.push(`nftables rule for ${ip}, which no READY pod has`);
  }
  const hostPorts = readJson<{ pods?: Record<string, unknown> }>(join(d.root, 'network', 'hostports.json'))?.pods ?? {};
  for (const id of Object.keys(hostPorts)) if (!readyNetPods.some((p) => p.id === id)) out.push(`hostPort state of pod ${id}, which is not READY`);
  return out;
}
