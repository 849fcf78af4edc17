// RuntimeService end to end, as kubelet drives it: pull → run pod → create/start container →
// logs → exec → stop → remove, with real namespaces, a real bridge network and real monitors.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { renameSync } from 'node:fs';
import { criProto } from '../src/server/cri-proto.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeCgroupParent, startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, layerFromEntries, pushBusybox, pushImage } from '../test-support/image-builder.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { checkNodeTruth } from '../test-support/node-truth.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';


const run = promisify(execFile);
// runc keeps its state in a root of the test's own: the handler's `root` key is honoured.
const RUNC_ROOT = join(tmpdir(), `crib-runc-root-${process.pid}`);
const RUNC_HANDLER = `[runtime.handlers.runc]\npath = "/usr/sbin/runc"\nroot = "${RUNC_ROOT}"\n`;

describe('pods and containers', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  let image: string;

  const podConfig = (name: string, extra: Record<string, unknown> = {}) => podConfigFactory('default', logDir)(name, extra);
  const containerConfig = (name: string, args: string[], extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c'],
    args,
    logPath: `${name}.log`,
    labels: { c: name },
    ...extra,
  });

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-pod-logs-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon({ toml: RUNC_HANDLER });
    await d.cri.image.PullImage({ image: { image } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
    await rm(RUNC_ROOT, { recursive: true, force: true });
    for (const parent of ['crib', 'crib-stats-test', 'crib-stats-warm']) await removeCgroupParent(parent);
  });

  it('runs a pod with a container, logs its output, execs in it, stops and removes it', async () => {
    const config = podConfig('web');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const pst = await d.cri.runtime.PodSandboxStatus({ podSandboxId });
    expect(pst.status.state).toBe('SANDBOX_READY');
    expect(pst.status.network.ip.startsWith(d.podCidr.split('.').slice(0, 3).join('.') + '.')).toBe(true);

    const cc = containerConfig('main', ['echo hello from crib; echo oops >&2; exec sleep 1000']);
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: cc, sandboxConfig: config });
    let st = (await d.cri.runtime.ContainerStatus({ containerId })).status;
    expect(st.state).toBe('CONTAINER_CREATED');
    await d.cri.runtime.StartContainer({ containerId });
    st = (await d.cri.runtime.ContainerStatus({ containerId })).status;
    expect(st.state).toBe('CONTAINER_RUNNING');
    expect(st.logPath).toBe(join(logDir, 'web', 'main.log'));

    const log = await waitFor('log lines', () => {
      const text = existsSync(st.logPath) ? readFileSync(st.logPath, 'utf8') : '';
      return text.includes('oops') ? text : undefined;
    });
    expect(log).toMatch(/^\S+ stdout F hello from crib$/m);
    expect(log).toMatch(/^\S+ stderr F oops$/m);

    const ex = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', 'hostname; cat /etc/hostname; exit 3'], timeout: '10' });
    expect(ex.exitCode).toBe(3);
    expect(ex.stdout.toString()).toBe('web\nweb\n');
    // The exec'd process starts with no signal ignored or blocked: not the daemon's SIGPIPE
    // ignore, nor the two glibc-internal signals its posix_spawn leaves ignored in the monitor.
    const sig = await d.cri.runtime.ExecSync({ containerId, cmd: ['grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status'], timeout: '10' });
    expect(sig.stdout.toString()).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');

    await d.cri.runtime.UpdatePodSandboxResources({ podSandboxId, resources: { memoryLimitInBytes: '134217728' } });
    const verbose = JSON.parse((await d.cri.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info);
    expect(verbose.resources.resources.memoryLimitInBytes).toBe('134217728');
    // The pod's pinned namespaces and its /dev/shm, mounted while it runs.
    const podMounts = [verbose.netns, verbose.ipcns, verbose.utsns, verbose.files.shmPath] as string[];
    const mountPoints = () => new Set(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? ''));
    expect(podMounts.filter((m) => !mountPoints().has(m))).toEqual([]);

    const listed = await d.cri.runtime.ListContainers({ filter: { podSandboxId, labelSelector: { c: 'main' } } });
    expect(listed.containers.map((c: { id: string }) => c.id)).toEqual([containerId]);

    await d.cri.runtime.StopContainer({ containerId, timeout: '1' });
    st = (await d.cri.runtime.ContainerStatus({ containerId })).status;
    expect(st.state).toBe('CONTAINER_EXITED');
    expect(st.exitCode).toBe(137);
    await expect(d.cri.runtime.ExecSync({ containerId, cmd: ['true'], timeout: '5' })).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });

    await d.cri.runtime.RemoveContainer({ containerId });
    await expect(d.cri.runtime.ContainerStatus({ containerId })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.state).toBe('SANDBOX_NOTREADY');
    // Stopped: its namespaces and /dev/shm are released, as containerd's stop does; the pinned
    // files stay until the removal.
    expect(podMounts.filter((m) => mountPoints().has(m))).toEqual([]);
    expect(existsSync(verbose.netns)).toBe(true);
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    expect(existsSync(verbose.netns)).toBe(false);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await expect(d.cri.runtime.PodSandboxStatus({ podSandboxId })).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('reports a completed container with its exit code and reason', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('job') });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('once', ['exit 7']) });
    await d.cri.runtime.StartContainer({ containerId });
    const st = await waitFor('exit', async () => {
      const s = (await d.cri.runtime.ContainerStatus({ containerId })).status;
      return s.state === 'CONTAINER_EXITED' ? s : undefined;
    });
    expect(st.exitCode).toBe(7);
    expect(st.reason).toBe('Error');
    expect(BigInt(st.finishedAt)).toBeGreaterThanOrEqual(BigInt(st.startedAt));
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('lets two pods talk over the bridge', async () => {
    const a = await d.cri.runtime.RunPodSandbox({ config: podConfig('srv') });
    const b = await d.cri.runtime.RunPodSandbox({ config: podConfig('cli') });
    const srv = await d.cri.runtime.CreateContainer({
      podSandboxId: a.podSandboxId,
      config: containerConfig('httpd', ['exec httpd -f -p 8080 -h /var/www']),
    });
    await d.cri.runtime.StartContainer({ containerId: srv.containerId });
    const cli = await d.cri.runtime.CreateContainer({ podSandboxId: b.podSandboxId, config: containerConfig('c', ['exec sleep 1000']) });
    await d.cri.runtime.StartContainer({ containerId: cli.containerId });
    const ip = (await d.cri.runtime.PodSandboxStatus({ podSandboxId: a.podSandboxId })).status.network.ip;
    const out = await waitFor('http over the bridge', async () => {
      const r = await d.cri.runtime.ExecSync({ containerId: cli.containerId, cmd: ['wget', '-q', '-O', '-', `http://${ip}:8080/`], timeout: '5' });
      return r.exitCode === 0 ? r.stdout.toString() : undefined;
    });
    expect(out).toBe('hello from crib\n');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: a.podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: b.podSandboxId });
  });

  it('forwards a hostPort from the host to the pod', async () => {
    const hostPort = 20000 + Math.floor(Math.random() * 20000);
    const config = podConfig('hp', { portMappings: [{ protocol: 'TCP', containerPort: 8080, hostPort }] });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('httpd', ['exec httpd -f -p 8080 -h /var/www']) });
    await d.cri.runtime.StartContainer({ containerId });
    const body = await waitFor('hostPort answers', async () => {
      const res = await fetch(`http://127.0.0.1:${hostPort}/`).catch(() => undefined);
      return res?.ok ? res.text() : undefined;
    });
    expect(body).toBe('hello from crib\n');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    // The rules went with the pod.
    expect(await fetch(`http://127.0.0.1:${hostPort}/`).then(() => 'answered', () => 'refused')).toBe('refused');
  });

  it('streams container and pod events for kubelet\'s evented PLEG, each with the pod\'s status and all its containers\'', async () => {
    interface Event { containerEventType: string; containerId: string; podSandboxStatus: { id: string; state: string; metadata: { uid: string } } | null; containersStatuses: { id: string; state: string }[] }
    const events: Event[] = [];
    const grpcClient = new (criProto().runtime.v1.RuntimeService)(`unix://${d.socket}`, credentials.createInsecure());
    const call = grpcClient.GetContainerEvents({});
    call.on('data', (e: Event) => events.push(e));
    call.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const config = podConfig('ev');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    await waitFor('pod started event', () => events.some((e) => e.containerId === podSandboxId && e.containerEventType === 'CONTAINER_STARTED_EVENT'));
    const { containerId: sleeper } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('s', ['sleep 1000']) });
    await d.cri.runtime.StartContainer({ containerId: sleeper });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('e', ['exit 0']) });
    await d.cri.runtime.StartContainer({ containerId });
    await waitFor('stopped event', () => events.some((e) => e.containerId === containerId && e.containerEventType === 'CONTAINER_STOPPED_EVENT'));
    await d.cri.runtime.RemoveContainer({ containerId });
    await waitFor('deleted event', () => events.some((e) => e.containerId === containerId && e.containerEventType === 'CONTAINER_DELETED_EVENT'));
    expect(events.filter((e) => e.containerId === containerId).map((e) => e.containerEventType)).toEqual([
      'CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT',
    ]);
    // kubelet replaces its cached status of the pod with an event's: every container of the pod
    // is in it, the one that did not change too; a deleted one is not.
    const stopped = events.find((e) => e.containerId === containerId && e.containerEventType === 'CONTAINER_STOPPED_EVENT')!;
    expect(stopped.podSandboxStatus).toMatchObject({ id: podSandboxId, state: 'SANDBOX_READY', metadata: { uid: config.metadata.uid } });
    expect(stopped.containersStatuses.map((c) => [c.id, c.state]).sort()).toEqual([[containerId, 'CONTAINER_EXITED'], [sleeper, 'CONTAINER_RUNNING']].sort());
    const deleted = events.find((e) => e.containerId === containerId && e.containerEventType === 'CONTAINER_DELETED_EVENT')!;
    expect(deleted.containersStatuses.map((c) => c.id)).toEqual([sleeper]);

    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await waitFor('pod deleted event', () => events.some((e) => e.containerId === podSandboxId && e.containerEventType === 'CONTAINER_DELETED_EVENT'));
    // The pod's own events go under its id, as containerd's do; its removal carries its last
    // status, which kubelet's cache entry for the pod is deleted by.
    const podEvents = events.filter((e) => e.containerId === podSandboxId);
    expect(podEvents.map((e) => e.containerEventType)).toEqual([
      'CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT',
    ]);
    expect(podEvents.map((e) => e.podSandboxStatus?.state)).toEqual(['SANDBOX_READY', 'SANDBOX_READY', 'SANDBOX_NOTREADY', 'SANDBOX_NOTREADY']);
    expect(podEvents.every((e) => e.podSandboxStatus?.id === podSandboxId && e.podSandboxStatus?.metadata.uid === config.metadata.uid)).toBe(true);
    expect(podEvents[2]!.containersStatuses.map((c) => [c.id, c.state])).toEqual([[sleeper, 'CONTAINER_EXITED']]);
    expect(podEvents[3]!.containersStatuses).toEqual([]);
    call.cancel();
    grpcClient.close();
  });

  it('reopens the log after rotation and updates resources of a running container', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('rot') });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, config: containerConfig('r', ['while true; do echo line; sleep 0.1; done']),
    });
    await d.cri.runtime.StartContainer({ containerId });
    const logPath = join(logDir, 'rot', 'r.log');
    await waitFor('first lines', () => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('line'));
    renameSync(logPath, `${logPath}.1`);
    await d.cri.runtime.ReopenContainerLog({ containerId });
    await waitFor('lines in the new file', () => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('line'));

    await d.cri.runtime.UpdateContainerResources({ containerId, linux: { memoryLimitInBytes: String(64 * 1024 * 1024), cpuShares: '512' } });
    const cg = (await d.cri.runtime.ExecSync({ containerId, cmd: ['cat', '/proc/self/cgroup'], timeout: '5' })).stdout.toString();
    const memPath = /:memory:(.*)$/m.exec(cg)?.[1];
    expect(memPath).toBeDefined();
    expect(readFileSync(`/sys/fs/cgroup/memory${memPath}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(64 * 1024 * 1024));
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('reports container and pod stats and metrics from the cgroups, the writable layer and the pod network', async () => {
    const config = podConfig('stats', { linux: { cgroupParent: '/crib-stats-test' } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId,
      config: containerConfig('busy', ['head -c 3000000 /dev/zero > /tmp/blob; x=$(head -c 20000000 /dev/zero | tr "\\0" a); while :; do :; done']),
    });
    await d.cri.runtime.StartContainer({ containerId });
    // Writable-layer usage is cached for a couple of seconds (a tree walk per call would be
    // costly): a first sample taken while the blob was being written stays for a moment.
    const first = await waitFor('memory in use and the blob in the writable layer', async () => {
      const s = (await d.cri.runtime.ContainerStats({ containerId })).stats;
      const busy = Number(s.memory?.workingSetBytes?.value ?? 0) > 10_000_000;
      return busy && Number(s.writableLayer?.usedBytes?.value ?? 0) >= 3_000_000 ? s : undefined;
    });
    expect(first.attributes.id).toBe(containerId);
    expect(Number(first.cpu.usageCoreNanoSeconds.value)).toBeGreaterThan(0);
    expect(Number(first.writableLayer.usedBytes.value)).toBeGreaterThanOrEqual(3_000_000);
    await new Promise((r) => setTimeout(r, 1100));
    const listed = await d.cri.runtime.ListContainerStats({ filter: { podSandboxId } });
    expect(listed.stats.map((s: { attributes: { id: string } }) => s.attributes.id)).toEqual([containerId]);
    expect(Number(listed.stats[0].cpu.usageNanoCores?.value ?? 0)).toBeGreaterThan(100_000_000);

    await d.cri.runtime.ExecSync({ containerId, cmd: ['ping', '-c', '2', '-W', '1', d.podCidr.replace(/0\/24$/, '1')], timeout: '10' });
    const pod = (await d.cri.runtime.PodSandboxStats({ podSandboxId })).stats;
    expect(pod.attributes.id).toBe(podSandboxId);
    expect(pod.linux.containers.map((c: { attributes: { id: string } }) => c.attributes.id)).toEqual([containerId]);
    expect(Number(pod.linux.network.defaultInterface.txBytes.value)).toBeGreaterThan(0);

    const { descriptors } = await d.cri.runtime.ListMetricDescriptors({});
    expect(descriptors.map((m: { name: string }) => m.name)).toContain('container_memory_working_set_bytes');
    const { podMetrics } = await d.cri.runtime.ListPodSandboxMetrics({});
    const mine = podMetrics.find((m: { podSandboxId: string }) => m.podSandboxId === podSandboxId);
    expect(mine.containerMetrics.map((c: { containerId: string }) => c.containerId)).toEqual([containerId]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  // Walked by whole paths, an entry below PATH_MAX failed the walk with ENAMETOOLONG, and with it
  // the listing of every container beside it and ImageFsInfo: kubelet's eviction went blind to the
  // disk the container was filling. A container needs only mkdir and cd to make one.
  it('counts a writable layer nested deeper than PATH_MAX, in a listing with the container beside it and in ImageFsInfo', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('deep') });
    const name = 'n'.repeat(40);
    // 150 levels of 40-byte names: 6,150 bytes of path; cd -P goes down by the name alone.
    const deep = `i=0; while [ $i -lt 150 ]; do mkdir ${name}; cd -P ${name}; i=$((i + 1)); done; head -c 2000000 /dev/urandom > blob; touch /done; sleep 100000`;
    const ids: string[] = [];
    for (const [cname, script] of [['deep', deep], ['plain', 'sleep 100000']] as const) {
      const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig(cname, [script]) });
      await d.cri.runtime.StartContainer({ containerId });
      ids.push(containerId);
    }
    const [deepId, plainId] = ids as [string, string];
    await waitFor('the deep tree made', async () =>
      (await d.cri.runtime.ExecSync({ containerId: deepId, cmd: ['test', '-f', '/done'], timeout: '5' })).exitCode === 0);
    type Listed = { attributes: { id: string }; writableLayer?: { usedBytes?: { value: string }; inodesUsed?: { value: string } } };
    // The 150 levels, the blob at the bottom, /done, and what the layer held before. A walk that
    // ran while the tree was being made (the levels there, the blob half written) is served for
    // 2 s: waited out, until a walk of the finished tree is.
    const whole = (inodes: number, bytes: number) => inodes >= 152 && bytes >= 2_000_000;
    const listed = await waitFor('the deep layer counted', async () => {
      const { stats } = await d.cri.runtime.ListContainerStats({ filter: { podSandboxId } }) as { stats: Listed[] };
      const mine = stats.find((s) => s.attributes.id === deepId);
      return whole(Number(mine?.writableLayer?.inodesUsed?.value ?? 0), Number(mine?.writableLayer?.usedBytes?.value ?? 0)) ? stats : undefined;
    });
    expect(listed.map((s) => s.attributes.id).sort()).toEqual([deepId, plainId].sort());
    await waitFor('the deep layer counted in ImageFsInfo', async () => {
      const { containerFilesystems } = await d.cri.image.ImageFsInfo({});
      return whole(Number(containerFilesystems[0].inodesUsed.value), Number(containerFilesystems[0].usedBytes.value)) || undefined;
    });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('hands a create that finished after kubelet gave up to kubelet\'s retry', async () => {
    const config = podConfig('retry');
    // A deadline so short the client gives up while the daemon is still creating the pod. On a
    // loaded machine the client's deadline timer can fire after the answer is in: then nothing
    // was abandoned, so that pod is removed and the race run again.
    for (let attempt = 1; ; attempt++) {
      const res = await d.cri.runtime.RunPodSandbox({ config }, { deadline: Date.now() + 5 }).then((r) => r, (err: unknown) => err);
      if (!(res && typeof res === 'object' && 'podSandboxId' in res)) {
        expect(res).toMatchObject({ code: status.DEADLINE_EXCEEDED });
        break;
      }
      expect(attempt, 'the client never gave up before the pod was made').toBeLessThan(10);
      await d.cri.runtime.RemovePodSandbox({ podSandboxId: res.podSandboxId as string });
    }
    const pods = await waitFor('the abandoned create to finish', async () => {
      const items = (await d.cri.runtime.ListPodSandbox({ filter: { labelSelector: { app: 'retry' } } })).items;
      return items.length === 1 ? items : undefined;
    });
    const retried = await d.cri.runtime.RunPodSandbox({ config });
    expect(retried.podSandboxId).toBe(pods[0].id);
    // Once handed over, the name is taken as usual.
    await expect(d.cri.runtime.RunPodSandbox({ config })).rejects.toMatchObject({ code: status.ALREADY_EXISTS });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: retried.podSandboxId });
  });

  it('honours host network, a pod-wide PID namespace and pod sysctls', async () => {
    const shared = await d.cri.runtime.RunPodSandbox({
      config: podConfig('shared', { linux: { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '79' }, securityContext: { namespaceOptions: { pid: 'POD' } } } }),
    });
    const a = await d.cri.runtime.CreateContainer({ podSandboxId: shared.podSandboxId, config: containerConfig('a', ['exec sleep 1000'], { linux: { securityContext: { namespaceOptions: { pid: 'POD' } } } }) });
    await d.cri.runtime.StartContainer({ containerId: a.containerId });
    const b = await d.cri.runtime.CreateContainer({ podSandboxId: shared.podSandboxId, config: containerConfig('b', ['exec sleep 1001'], { linux: { securityContext: { namespaceOptions: { pid: 'POD' } } } }) });
    await d.cri.runtime.StartContainer({ containerId: b.containerId });
    const ps = (await d.cri.runtime.ExecSync({ containerId: b.containerId, cmd: ['ps', '-o', 'args'], timeout: '5' })).stdout.toString();
    expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId: shared.podSandboxId })).status.linux.namespaces.options.pid).toBe('POD');
    expect(ps).toContain('sleep 1000');
    expect(ps).toContain('sleep 1001');
    const sysctl = (await d.cri.runtime.ExecSync({ containerId: a.containerId, cmd: ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'], timeout: '5' })).stdout.toString();
    expect(sysctl.trim()).toBe('79');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: shared.podSandboxId });

    const host = await d.cri.runtime.RunPodSandbox({
      config: podConfig('hostnet', { hostname: '', linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } }),
    });
    expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId: host.podSandboxId })).status.network.ip).toBe('');
    const h = await d.cri.runtime.CreateContainer({
      podSandboxId: host.podSandboxId,
      config: containerConfig('h', ['exec sleep 1000'], { linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } }),
    });
    await d.cri.runtime.StartContainer({ containerId: h.containerId });
    const links = (await d.cri.runtime.ExecSync({ containerId: h.containerId, cmd: ['cat', '/proc/net/dev'], timeout: '5' })).stdout.toString();
    expect(links).toContain(d.bridge);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: host.podSandboxId });
  });

  it('gives a pod without a hostname the node\'s, whatever its name', async () => {
    const config = podConfig('Not-A-Valid.HOSTNAME-because-of-Capitals-and-length-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', { hostname: '' });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    // No namespace options at all: containers get a PID namespace of their own, and the status
    // says so rather than the proto's zero value (POD).
    expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.linux.namespaces.options)
      .toMatchObject({ network: 'POD', pid: 'CONTAINER', ipc: 'POD' });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('h', ['exec sleep 1000']) });
    await d.cri.runtime.StartContainer({ containerId });
    const out = await d.cri.runtime.ExecSync({ containerId, cmd: ['hostname'], timeout: '5' });
    expect(out.stdout.toString().trim()).toBe(hostname());
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('kills a timed-out ExecSync without leaving its process behind in the container', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('exectimeout') });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('t', ['exec sleep 1000']) });
    await d.cri.runtime.StartContainer({ containerId });
    await expect(d.cri.runtime.ExecSync({ containerId, cmd: ['sleep', '77'], timeout: '1' })).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    const ps = (await d.cri.runtime.ExecSync({ containerId, cmd: ['ps', '-o', 'pid,stat,args'], timeout: '5' })).stdout.toString();
    expect(ps).not.toContain('sleep 77');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('takes an ExecSync\'s process from the container\'s bundle once, at its first exec', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('exectemplate') });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, config: containerConfig('t', ['exec sleep 1000'], { envs: [{ key: 'PROBE', value: Buffer.from('first') }] }),
    });
    await d.cri.runtime.StartContainer({ containerId });
    const probe = async () => (await d.cri.runtime.ExecSync({ containerId, cmd: ['sh', '-c', 'echo $PROBE'], timeout: '5' })).stdout.toString();
    expect(await probe()).toBe('first\n');
    // The bundle is crib's and never changes after the create: a later exec does not read it again.
    const configFile = join(d.state, 'containers', containerId, 'bundle', 'config.json');
    const spec = JSON.parse(readFileSync(configFile, 'utf8')) as { process: { env: string[] } };
    spec.process.env = spec.process.env.map((e) => (e === 'PROBE=first' ? 'PROBE=changed' : e));
    writeFileSync(configFile, JSON.stringify(spec));
    expect(await probe()).toBe('first\n');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('propagates mounts both ways with a bidirectional (rshared) volume', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'crib-rshared-'));
    await run('mount', ['--bind', shared, shared]);
    await run('mount', ['--make-shared', shared]);
    try {
      const config = podConfig('rshared', { linux: { securityContext: { privileged: true } } });
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
      const { containerId } = await d.cri.runtime.CreateContainer({
        podSandboxId,
        config: containerConfig('m', ['mkdir -p /mnt/shared/sub && mount -t tmpfs tmpfs /mnt/shared/sub && echo hi > /mnt/shared/sub/f && exec sleep 1000'], {
          linux: { securityContext: { privileged: true } },
          mounts: [{ containerPath: '/mnt/shared', hostPath: shared, propagation: 'PROPAGATION_BIDIRECTIONAL' }],
        }),
      });
      await d.cri.runtime.StartContainer({ containerId });
      // The container's mount shows up on the host.
      expect(await waitFor('mount on the host', () => (existsSync(join(shared, 'sub', 'f')) ? readFileSync(join(shared, 'sub', 'f'), 'utf8') : undefined))).toBe('hi\n');
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      await run('umount', ['-R', shared]).catch(() => undefined);
      await rm(shared, { recursive: true, force: true });
    }
  });

  it('makes a recursiveReadOnly volume read-only down to the mounts below it, with crib and runc', async () => {
    // kubelet only asks for recursive read-only where Status says the handler can do it.
    const handlers = (await d.cri.runtime.Status({})).runtimeHandlers;
    // The default handler is listed as "" and under its own name.
    expect(handlers.map((h: { name: string; features?: { recursiveReadOnlyMounts: boolean } }) => [h.name, h.features?.recursiveReadOnlyMounts])).toEqual([['', true], ['crib', true], ['runc', true]]);
    const host = await mkdtemp(join(tmpdir(), 'crib-rro-'));
    await run('mkdir', [join(host, 'sub')]);
    await run('mount', ['-t', 'tmpfs', 'tmpfs', join(host, 'sub')]);
    try {
      for (const handler of ['', 'runc']) {
        const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig(`rro${handler}`), runtimeHandler: handler });
        const { containerId } = await d.cri.runtime.CreateContainer({
          podSandboxId,
          config: containerConfig('w', ['exec sleep 1000'], {
            mounts: [
              { containerPath: '/rro', hostPath: host, readonly: true, recursiveReadOnly: true, propagation: 'PROPAGATION_PRIVATE' },
              { containerPath: '/ro', hostPath: host, readonly: true, propagation: 'PROPAGATION_PRIVATE' },
            ],
          }),
        });
        await d.cri.runtime.StartContainer({ containerId });
        const attempt = async (path: string) => (await d.cri.runtime.ExecSync({ containerId, cmd: ['touch', path], timeout: '5' })).exitCode;
        expect(await attempt('/rro/top')).not.toBe(0);
        expect(await attempt('/rro/sub/below')).not.toBe(0);
        expect(await attempt('/ro/top')).not.toBe(0);
        // A plain read-only bind leaves the mount below it writable: that is what rro is for.
        expect(await attempt('/ro/sub/below')).toBe(0);
        await d.cri.runtime.RemovePodSandbox({ podSandboxId });
        await rm(join(host, 'sub', 'below'), { force: true });
      }
    } finally {
      await run('umount', ['-R', join(host, 'sub')]).catch(() => undefined);
      await rm(host, { recursive: true, force: true });
    }
  });

  it('applies supplementalGroupsPolicy Merge and Strict, and reports the identity in ContainerStatus.user', async () => {
    expect((await d.cri.runtime.Status({})).features.supplementalGroupsPolicy).toBe(true);
    // An image whose /etc/group puts "user" (1000) into a group of its own, 50000.
    const groups = await layerFromEntries([{ type: 'file', path: 'etc/group',
      content: 'root:x:0:\nuser:x:1000:\ngroup-defined-in-image:x:50000:user\nnogroup:x:65534:\n' }]);
    const built = buildImage({ layers: [await busyboxRootfsLayer(), groups], config: { Cmd: ['/bin/sh'] } });
    await pushImage(registry, 'library/groups', 'latest', built);
    const groupsImage = `${registry.host}/library/groups:latest`;
    await d.cri.image.PullImage({ image: { image: groupsImage } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('groups') });
    for (const [policy, expected] of [['Merge', ['1000', '1234', '50000']], ['Strict', ['1000', '1234']]] as const) {
      const { containerId } = await d.cri.runtime.CreateContainer({
        podSandboxId,
        config: containerConfig(`g-${policy.toLowerCase()}`, ['exec sleep 1000'], {
          image: { image: groupsImage },
          linux: { securityContext: { runAsUser: { value: '1000' }, supplementalGroups: ['1234'], supplementalGroupsPolicy: policy } },
        }),
      });
      await d.cri.runtime.StartContainer({ containerId });
      const { user } = (await d.cri.runtime.ContainerStatus({ containerId })).status;
      expect(user.linux).toEqual({ uid: '1000', gid: '1000', supplementalGroups: expected });
      const ids = await d.cri.runtime.ExecSync({ containerId, cmd: ['id', '-G'], timeout: '5' });
      expect(ids.stdout.toString().trim().split(' ').sort()).toEqual([...expected].sort());
    }
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('runs a pod under the runc handler when it is configured', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('viarunc'), runtimeHandler: 'runc' });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('r', ['exec sleep 1000']) });
    await d.cri.runtime.StartContainer({ containerId });
    const out = await d.cri.runtime.ExecSync({ containerId, cmd: ['hostname'], timeout: '5' });
    expect(out.stdout.toString()).toBe('viarunc\n');
    expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.runtimeHandler).toBe('runc');
    // The configured root is where runc keeps the container's state.
    const listed = JSON.parse((await run('/usr/sbin/runc', ['--root', RUNC_ROOT, 'list', '--format', 'json'])).stdout) as { id: string }[];
    expect(listed.map((c) => c.id)).toContain(containerId);
    await expect(d.cri.runtime.RunPodSandbox({ config: podConfig('nohandler'), runtimeHandler: 'kata' })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT, details: expect.stringContaining('kata'),
    });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('rejects bad input with the right codes and leaves nothing half-made', async () => {
    await expect(d.cri.runtime.RunPodSandbox({ config: { metadata: { name: '', namespace: 'x', uid: 'u' } } })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT, details: expect.stringContaining('metadata.name'),
    });
    const config = podConfig('dup');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    await expect(d.cri.runtime.RunPodSandbox({ config })).rejects.toMatchObject({ code: status.ALREADY_EXISTS });
    const cc = containerConfig('one', ['sleep 100']);
    await d.cri.runtime.CreateContainer({ podSandboxId, config: cc });
    await expect(d.cri.runtime.CreateContainer({ podSandboxId, config: cc })).rejects.toMatchObject({ code: status.ALREADY_EXISTS });
    await expect(d.cri.runtime.CreateContainer({ podSandboxId, config: { ...cc, metadata: { name: 'img', attempt: 0 }, image: { image: 'nope/nothing:1' } } }))
      .rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(d.cri.runtime.CreateContainer({ podSandboxId: 'f'.repeat(64), config: cc })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(d.cri.runtime.StartContainer({ containerId: 'e'.repeat(64) })).rejects.toMatchObject({ code: status.NOT_FOUND });
    // Stop and remove are idempotent, also for ids that never existed (critest's Idempotence).
    await expect(d.cri.runtime.StopContainer({ containerId: 'e'.repeat(64), timeout: '0' })).resolves.toEqual({});
    await expect(d.cri.runtime.RemoveContainer({ containerId: 'e'.repeat(64) })).resolves.toEqual({});
    await expect(d.cri.runtime.StopPodSandbox({ podSandboxId: 'e'.repeat(64) })).resolves.toEqual({});
    await expect(d.cri.runtime.RemovePodSandbox({ podSandboxId: 'e'.repeat(64) })).resolves.toEqual({});
    // A failed create (the command does not exist) is rolled back and its name can be reused.
    const bad = { ...cc, metadata: { name: 'bad', attempt: 0 }, command: ['/does/not/exist'], args: [] };
    const created = await d.cri.runtime.CreateContainer({ podSandboxId, config: bad }).then((r: { containerId: string }) => r.containerId, () => undefined);
    if (created) {
      await expect(d.cri.runtime.StartContainer({ containerId: created })).rejects.toBeDefined();
    }
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    expect((await d.cri.runtime.ListContainers({ filter: { podSandboxId } })).containers).toEqual([]);
  });

  it('a created container runs nothing until its start; limits updated before the start apply; a pod with created containers stops and goes', async () => {
    const config = podConfig('created');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, sandboxConfig: config, config: containerConfig('later', ['exec sleep 1000']) });
    const { containerId: never } = await d.cri.runtime.CreateContainer({ podSandboxId, sandboxConfig: config, config: containerConfig('never', ['exec sleep 1000']) });
    // Nothing of it exists in the runtime: no process, no monitor, no state (node-truth checks
    // processes, runtime state and cgroup of a CREATED container without a pid).
    const st = await d.cri.runtime.ContainerStatus({ containerId, verbose: true });
    expect(st.status.state).toBe('CONTAINER_CREATED');
    expect(JSON.parse(st.info.info)).toMatchObject({ pid: 0, monitorPid: 0 });
    expect(existsSync(join(d.state, 'runtime', containerId))).toBe(false);
    expect(await checkNodeTruth(d)).toEqual([]);
    // Stats of a container with no cgroup yet answer (no usage), they do not fail.
    expect((await d.cri.runtime.ContainerStats({ containerId })).stats.attributes.id).toBe(containerId);
    // UpdateContainerResources before the start: applied by the runtime's create at the start.
    const limit = 48 * 1024 * 1024;
    await d.cri.runtime.UpdateContainerResources({ containerId, linux: { memoryLimitInBytes: String(limit) } });
    await d.cri.runtime.StartContainer({ containerId });
    const info = JSON.parse((await d.cri.runtime.ContainerStatus({ containerId, verbose: true })).info.info) as { pid: number };
    const cgroups = readFileSync(`/proc/${info.pid}/cgroup`, 'utf8').split('\n');
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const rel = v2 ? cgroups.find((l) => l.startsWith('0::'))!.slice(3) : cgroups.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))!.split(':')[2]!;
    const file = v2 ? join('/sys/fs/cgroup', rel, 'memory.max') : join('/sys/fs/cgroup/memory', rel, 'memory.limit_in_bytes');
    expect(Number(readFileSync(file, 'utf8').trim())).toBe(limit);
    expect(await checkNodeTruth(d)).toEqual([]);
    // The pod stops (the created one is recorded exited, having never run) and goes.
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    expect((await d.cri.runtime.ContainerStatus({ containerId: never })).status).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 137 });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    expect((await d.cri.runtime.ListContainers({ filter: { podSandboxId } })).containers).toEqual([]);
    expect(await checkNodeTruth(d)).toEqual([]);
  });

  it('node truth: a removal still running (its marker, a record a late write made beside it) gets time; a marker left for good is a lie', async () => {
    const id = randomBytes(32).toString('hex');
    const record = join(d.root, 'containers', `${id}.json`);
    const marker = `${record}.removing`;
    try {
      // As a background write landing after RemoveContainer's rename leaves them, then the
      // removal's end deletes them: the record first, the marker last.
      writeFileSync(marker, '{}');
      writeFileSync(record, '{}');
      setTimeout(() => rmSync(record, { force: true }), 200);
      setTimeout(() => rmSync(marker, { force: true }), 400);
      expect(await checkNodeTruth(d)).toEqual([]);
      writeFileSync(marker, '{}');
      expect(await checkNodeTruth(d)).toEqual([`container removal marker: ${id} exists but is not reported`]);
    } finally {
      rmSync(record, { force: true });
      rmSync(marker, { force: true });
    }
  });

  it("node truth: a torn-down pod's host-port state, released after its veth, gets time; one left for good is a lie", async () => {
    const id = randomBytes(32).toString('hex');
    const dir = join(d.root, 'network');
    const file = join(dir, 'hostports.json');
    // Made by the first pod's network: this test may run before any.
    const madeDir = !existsSync(dir);
    mkdirSync(dir, { recursive: true });
    const original = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    const withPod = () => {
      const state = original === undefined ? {} : JSON.parse(original) as { pods?: Record<string, unknown> };
      writeFileSync(file, JSON.stringify({ ...state, pods: { ...state.pods, [id]: { ips: [], mappings: [] } } }));
    };
    const restore = () => (original === undefined ? rmSync(file, { force: true }) : writeFileSync(file, original));
    try {
      // As a stopped pod's background teardown leaves it: the rules went before StopPodSandbox
      // answered; the ports stay held until the veth is deleted, then their state goes.
      withPod();
      setTimeout(restore, 300);
      expect(await checkNodeTruth(d)).toEqual([]);
      withPod();
      expect(await checkNodeTruth(d)).toEqual([`hostPort state of pod ${id}, which is not READY`]);
    } finally {
      restore();
      if (madeDir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps containers running and logging across a daemon kill -9 and restart', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('survivor') });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, config: containerConfig('ticker', ['i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']),
    });
    await d.cri.runtime.StartContainer({ containerId });
    const quick = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('quick', ['sleep 1; exit 4']) });
    await d.cri.runtime.StartContainer({ containerId: quick.containerId });
    await d.stop('SIGKILL');
    const logPath = join(logDir, 'survivor', 'ticker.log');
    const before = readFileSync(logPath, 'utf8').length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(readFileSync(logPath, 'utf8').length).toBeGreaterThan(before);
    d = await startDaemon({ dir: d.dir, toml: RUNC_HANDLER });
    const ids = (await d.cri.runtime.ListContainers({ filter: { podSandboxId } })).containers.map((c: { id: string }) => c.id).sort();
    expect(ids).toEqual([containerId, quick.containerId].sort());
    expect((await d.cri.runtime.ContainerStatus({ containerId })).status.state).toBe('CONTAINER_RUNNING');
    const q = (await d.cri.runtime.ContainerStatus({ containerId: quick.containerId })).status;
    expect(q.state).toBe('CONTAINER_EXITED');
    expect(q.exitCode).toBe(4);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('reads a pod\'s stats soon after it starts, and after a restart: the first listings have CPU rates', async () => {
    const config = podConfig('warm', { linux: { cgroupParent: '/crib-stats-warm' } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('spin', ['while :; do :; done']) });
    await d.cri.runtime.StartContainer({ containerId });
    // A rate needs two samples a second apart: the daemon took the first soon after the start
    // (and after its own), so the first listings, a while later, have one (without it, none).
    const firstListingsHaveRates = async () => {
      await new Promise((r) => setTimeout(r, 3000));
      const [ctr] = (await d.cri.runtime.ListContainerStats({ filter: { id: containerId } })).stats;
      expect(Number(ctr.cpu.usageNanoCores?.value ?? 0)).toBeGreaterThan(100_000_000);
      const [pod] = (await d.cri.runtime.ListPodSandboxStats({ filter: { id: podSandboxId } })).stats;
      expect(Number(pod.linux.cpu.usageNanoCores?.value ?? 0)).toBeGreaterThan(100_000_000);
    };
    await firstListingsHaveRates();
    await d.stop();
    d = await startDaemon({ dir: d.dir, toml: RUNC_HANDLER });
    await firstListingsHaveRates();
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('keeps the period of kubelet\'s stats listings across a clean restart: the first listing after it was read ahead of', async () => {
    const config = podConfig('periodic', { linux: { cgroupParent: '/crib-stats-warm' } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('idle', ['exec sleep 1000']) });
    await d.cri.runtime.StartContainer({ containerId });
    const periodMs = 5000;
    const t0 = Date.now();
    // kubelet's pattern: every container, then every pod, unfiltered; each entry's CPU timestamp.
    const listings = async () => {
      type Entry = { attributes: { id: string }; cpu: { timestamp: string } };
      const containers = ((await d.cri.runtime.ListContainerStats({})).stats as Entry[]).find((s) => s.attributes.id === containerId);
      const pods = (await d.cri.runtime.ListPodSandboxStats({})).stats as { attributes: { id: string }; linux: Entry }[];
      const pod = pods.find((s) => s.attributes.id === podSandboxId);
      return [BigInt(containers!.cpu.timestamp), BigInt(pod!.linux.cpu.timestamp)];
    };
    await listings();
    await new Promise((r) => setTimeout(r, t0 + periodMs - Date.now()));
    await listings();
    await d.stop();
    const file = join(d.state, 'stats-listing-periods.json');
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '{}';
    d = await startDaemon({ dir: d.dir, toml: RUNC_HANDLER }); // before any assertion: the pod goes at the end
    const saved = JSON.parse(text) as { containers?: { periodMs: number }; pods?: { periodMs: number } };
    expect(saved.containers?.periodMs).toBeGreaterThanOrEqual(periodMs - 100);
    expect(saved.pods?.periodMs).toBeGreaterThanOrEqual(periodMs - 100);
    expect(existsSync(file)).toBe(false); // taken: a later kill -9 finds no stale one
    // The next tick. The daemon's first readings, half a second after it started, are more than
    // the 2 s an unforecast listing accepts by then: without the period it would read now.
    await new Promise((r) => setTimeout(r, t0 + 2 * periodMs - Date.now()));
    const before = BigInt(Date.now()) * 1_000_000n;
    const stamps = await listings();
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    for (const ts of stamps) expect(ts).toBeLessThan(before);
  });
});
