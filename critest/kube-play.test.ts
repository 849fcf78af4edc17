// `crib kube play|ps|down` end to end: the real crib binary plays Pod manifests against a real
// daemon, with images from a real registry, and a detached supervisor keeps them as kubelet
// would: init containers first, a shared emptyDir, ConfigMap/Secret volumes, env fieldRefs,
// readiness over HTTP, liveness restarts with back-off, a hostPort, surviving a daemon restart,
// and `kube down` leaving nothing behind.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { freePort, startRegistry, type TestRegistry } from '../test-support/registry.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface PsItem {
  namespace: string;
  name: string;
  ready: string;
  status: string;
  restarts: number;
  supervisorPid: number | null;
  pod: { uid: string; sandboxId?: string; podIp?: string; containers: { name: string; id?: string; restartCount: number; restarts: { exitedAt: number; at: number }[]; ready: boolean; phase: string }[] };
}

describe('crib kube play', { timeout: 200_000 }, () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let dir: string;
  let stateDir: string;
  let logRoot: string;
  let image: string;

  function crib(args: string[], timeoutMs = 60_000): Promise<Run> {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [CLI, '--address', `unix://${d.socket}`, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        if (err && code === -1) reject(err);
        else resolve({ code, stdout, stderr });
      });
    });
  }
  const kube = (verb: string, ...rest: string[]) => crib(['kube', verb, ...rest, '--state-dir', stateDir]);
  const play = (file: string, ...rest: string[]) => kube('play', file, '--pod-log-dir', logRoot, '--backoff-base', '1s', ...rest);
  async function ps(): Promise<PsItem[]> {
    const r = await kube('ps', '-o', 'json');
    expect(r.stderr).toBe('');
    return (JSON.parse(r.stdout) as { items: PsItem[] }).items;
  }
  const psOf = async (name: string) => (await ps()).find((p) => p.name === name);
  async function manifest(name: string, text: string): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, text);
    return file;
  }
  const exec = async (containerId: string, cmd: string[]) => {
    const r = await d.cri.runtime.ExecSync({ containerId, cmd, timeout: 10 }, { deadline: Date.now() + 20_000 });
    return { code: r.exitCode as number, out: Buffer.from(r.stdout).toString() };
  };
  const httpGet = (url: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    get(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
  const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const mountsUnder = (path: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(path));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-kube-'));
    stateDir = join(dir, 'kube');
    logRoot = join(dir, 'pod-logs');
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', '1.0');
    image = `${registry.host}/library/busybox:1.0`;
    d = await startDaemon();
  });
  afterAll(async () => {
    // Supervisors a failed test left: stop them by their recorded pid before the daemon goes.
    for (const key of await readdir(join(stateDir, 'pods')).catch(() => [] as string[])) {
      // KUBE_DEBUG=1: show what each supervisor saw, to diagnose a failure.
      if (process.env.KUBE_DEBUG) console.log(key, readFileSync(join(stateDir, 'pods', key, 'supervisor.log'), 'utf8'), readFileSync(join(stateDir, 'pods', key, 'state.json'), 'utf8'));
      const pid = Number(readFileSync(join(stateDir, 'pods', key, 'supervisor.pid'), 'utf8'));
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    }
    for (const m of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
      await new Promise((r) => execFile('umount', [m], r));
    }
    await d?.cleanup();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('rejects unsupported fields by name and makes nothing', async () => {
    const file = await manifest('unsupported', `apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  nodeSelector: {disk: ssd}
  containers:
    - name: a
      image: ${image}
      lifecycle: {preStop: {exec: {command: [x]}}}
      resources: {limits: {nvidia.com/gpu: 1}}
`);
    const r = await play(file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('crib kube play does not support these fields: spec.nodeSelector, spec.containers[0].lifecycle, spec.containers[0].resources.limits.nvidia.com/gpu');
    const missing = await play(await manifest('nocm', `kind: Pod\nmetadata: {name: nocm}\nspec:\n  volumes: [{name: c, configMap: {name: settings}}]\n  containers: [{name: a, image: ${image}}]\n`));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('volume "c" needs ConfigMap "settings": pass its manifest with --configmap FILE');
    expect(await readdir(join(stateDir, 'pods')).catch(() => [])).toEqual([]);
    expect((await d.cri.runtime.ListPodSandbox({}, { deadline: Date.now() + 5000 })).items).toEqual([]);
  });

  it('--wait fails with the failing container\'s last log lines', async () => {
    const file = await manifest('doomed', `kind: Pod\nmetadata: {name: doomed}\nspec:\n  restartPolicy: Never\n  containers:\n    - {name: app, image: ${image}, command: [sh, -c, 'echo starting; echo cannot open /config >&2; exit 4']}\n`);
    const r = await play(file, '--wait', '--timeout', '60s');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('crib: pod default/doomed is not Ready: it failed (status Error, ready 0/1, restarts 0)');
    expect(r.stderr).toContain('container app: terminated (Error), exit code 4');
    expect(r.stderr).toContain('last log lines of app:\n  starting\n  cannot open /config\n');
    expect((await psOf('doomed'))!.status).toBe('Error');
    expect((await kube('down', file)).code).toBe(0);
  });

  it('runs init containers first, shares an emptyDir between two containers, waits for HTTP readiness, and kube down removes everything', async () => {
    const hostPort = await freePort();
    const cm = await manifest('cm', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  greeting: hello from a configmap\n');
    const secret = await manifest('secret', `apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata:\n  token: ${Buffer.from('s3cret').toString('base64')}\n`);
    const file = await manifest('web', `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: play
  labels: {app: web}
  annotations: {team: crib}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
    - {name: data, emptyDir: {}}
    - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
    - {name: settings, configMap: {name: settings}}
    - {name: creds, secret: {secretName: creds, defaultMode: 0400}}
  initContainers:
    - name: first
      image: ${image}
      command: [sh, -c, 'sleep 1; echo first > /data/order']
      volumeMounts: [{name: data, mountPath: /data}]
    - name: second
      image: ${image}
      command: [sh, -c, 'echo second >> /data/order']
      volumeMounts: [{name: data, mountPath: /data}]
  containers:
    - name: writer
      image: ${image}
      command: [sh, -c]
      args: ['echo writer >> /data/order; echo "$(POD_NAME) $POD_NS $GREETING" > /data/env; sleep 2; echo ok > /data/ready.html; exec sleep 3600']
      env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
      volumeMounts: [{name: data, mountPath: /data}, {name: scratch, mountPath: /scratch}]
      resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {cpu: 500m, memory: 64Mi}}
    - name: server
      image: ${image}
      command: [httpd, -f, -p, '8080', -h, /data]
      ports: [{name: http, containerPort: 8080, hostPort: ${hostPort}}]
      readinessProbe: {httpGet: {path: /ready.html, port: http}, periodSeconds: 1}
      volumeMounts: [{name: data, mountPath: /data, readOnly: true}, {name: settings, mountPath: /etc/settings}, {name: creds, mountPath: /etc/creds}]
`);
    const r = await play(file, '--configmap', cm, '--secret', secret, '--wait', '--timeout', '60s');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('pod/web is Ready');
    const item = (await psOf('web'))!;
    expect(item).toMatchObject({ namespace: 'play', ready: '2/2', status: 'Running', restarts: 0 });
    const table = await kube('ps');
    expect(table.stdout).toMatch(/^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    expect(table.stdout).toMatch(/\nplay\s+web\s+2\/2\s+Running\s+0\s+\d+s\n/);
    const ids = Object.fromEntries(item.pod.containers.map((c) => [c.name, c.id!]));
    // Readiness came from the HTTP probe: the file it asks for exists once --wait returned.
    expect((await exec(ids.server!, ['cat', '/data/order', '/data/env', '/data/ready.html'])).out)
      .toBe('first\nsecond\nwriter\nweb play hello from a configmap\nok\n');
    expect((await exec(ids.server!, ['cat', '/etc/settings/greeting', '/etc/creds/token'])).out).toBe('hello from a configmaps3cret');
    expect((await exec(ids.server!, ['sh', '-c', 'touch /data/x || echo read-only'])).out).toContain('read-only');
    expect((await exec(ids.server!, ['stat', '-c', '%a', '/etc/creds/token'])).out.trim()).toBe('400');
    // Burstable: 1000 - 1000 * 32Mi / MemTotal.
    const memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
    expect(Number((await exec(ids.writer!, ['cat', '/proc/self/oom_score_adj'])).out)).toBe(Math.max(3, 1000 - Math.floor((1000 * 32 * 2 ** 20) / memTotal)));
    expect((await httpGet(`http://127.0.0.1:${hostPort}/ready.html`)).body).toBe('ok\n');

    // What kubelet would have sent: labels, annotations, log paths, resources.
    const { items: sandboxes } = await d.cri.runtime.ListPodSandbox({ filter: { labelSelector: { 'io.kubernetes.pod.uid': item.pod.uid } } }, { deadline: Date.now() + 5000 });
    expect(sandboxes).toHaveLength(1);
    expect(sandboxes[0].labels).toMatchObject({ app: 'web', 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'play', 'io.kubernetes.pod.uid': item.pod.uid });
    expect(sandboxes[0].annotations).toMatchObject({ team: 'crib' });
    expect(sandboxes[0].metadata).toMatchObject({ name: 'web', namespace: 'play', uid: item.pod.uid, attempt: 0 });
    const { status: writer } = await d.cri.runtime.ContainerStatus({ containerId: ids.writer }, { deadline: Date.now() + 5000 });
    expect(writer.labels).toMatchObject({ 'io.kubernetes.container.name': 'writer', 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.uid': item.pod.uid });
    expect(writer.annotations).toMatchObject({ 'io.kubernetes.container.restartCount': '0', 'io.kubernetes.container.terminationMessagePath': '/dev/termination-log', 'io.kubernetes.pod.terminationGracePeriod': '1' });
    expect(writer.annotations['io.kubernetes.container.hash']).toMatch(/^[0-9a-f]+$/);
    const podLogDir = join(logRoot, `play_web_${item.pod.uid}`);
    expect(writer.logPath).toBe(join(podLogDir, 'writer', '0.log'));
    expect(readFileSync(join(podLogDir, 'first', '0.log'), 'utf8')).toBe('');
    expect(writer.resources.linux).toMatchObject({ cpuShares: '102', cpuQuota: '50000', cpuPeriod: '100000', memoryLimitInBytes: String(64 * 2 ** 20) });
    expect((await exec(ids.writer!, ['hostname'])).out).toBe('web\n');
    expect((await exec(ids.writer!, ['grep', 'web', '/etc/hosts'])).out).toBe(`${item.pod.podIp}\tweb\n`);

    // Playing it again is refused; down removes exactly what play made.
    const again = await play(file, '--configmap', cm, '--secret', secret);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('pod play/web is already played: run "crib kube down');
    const podDir = join(stateDir, 'pods', 'play_web');
    expect(mountsUnder(podDir).length).toBe(2);
    const down = await kube('down', file);
    expect(down.stderr).toBe('');
    expect(down.stdout).toBe('pod/web removed\n');
    expect(alive(item.supervisorPid!)).toBe(false);
    expect((await d.cri.runtime.ListPodSandbox({}, { deadline: Date.now() + 5000 })).items).toEqual([]);
    expect((await d.cri.runtime.ListContainers({}, { deadline: Date.now() + 5000 })).containers).toEqual([]);
    expect(existsSync(podDir)).toBe(false);
    expect(existsSync(podLogDir)).toBe(false);
    expect(mountsUnder(stateDir)).toEqual([]);
    expect(await ps()).toEqual([]);
    const twice = await kube('down', file);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('no pod of');
  });

  it('restarts a container whose liveness probe fails, with kubelet\'s doubling back-off, and counts the restarts', async () => {
    const file = await manifest('crashy', `apiVersion: v1
kind: Pod
metadata: {name: crashy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: ${image}
      command: [sh, -c, 'echo started; exec sleep 3600']
      livenessProbe: {exec: {command: ['false']}, periodSeconds: 1, failureThreshold: 1}
`);
    const r = await play(file);
    expect(r.code).toBe(0);
    const item = await waitFor('three restarts', async () => {
      const p = await psOf('crashy');
      return p && p.restarts >= 3 ? p : undefined;
    }, 60_000);
    const c = item.pod.containers[0]!;
    expect(c.restartCount).toBeGreaterThanOrEqual(3);
    // Restart 1 follows the kill at once; the next waits 1 s after the exit, the one after 2 s.
    const waits = c.restarts.map((x) => x.at - x.exitedAt);
    expect(waits[0]).toBeLessThan(1000);
    expect(waits[1]).toBeGreaterThanOrEqual(1000);
    expect(waits[2]).toBeGreaterThanOrEqual(2000);
    const { status } = await d.cri.runtime.ContainerStatus({ containerId: c.id }, { deadline: Date.now() + 5000 });
    expect(status.metadata.attempt).toBe(c.restartCount);
    expect(status.annotations['io.kubernetes.container.restartCount']).toBe(String(c.restartCount));
    expect(status.logPath).toMatch(new RegExp(`/app/${c.restartCount}\\.log$`));
    // kubelet keeps one dead container for its logs; older ones are removed.
    const { containers } = await d.cri.runtime.ListContainers({ filter: { labelSelector: { 'io.kubernetes.pod.uid': item.pod.uid } } }, { deadline: Date.now() + 5000 });
    expect(containers.length).toBeLessThanOrEqual(2);
    expect((await kube('down', file)).code).toBe(0);
  });

  it('keeps a played pod running and supervised across a daemon restart', async () => {
    const file = await manifest('steady', `apiVersion: apps/v1
kind: Deployment
metadata: {name: steady, namespace: ops}
spec:
  replicas: 1
  selector: {matchLabels: {app: steady}}
  template:
    metadata: {labels: {app: steady}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - {name: main, image: ${image}, command: [sleep, '3600']}
        - {name: flaky, image: ${image}, command: [sh, -c, 'sleep 1; exit 3']}
`);
    const r = await play(file, '--backoff-max', '2s');
    expect(r.code).toBe(0);
    const before = await waitFor('a restart of flaky', async () => {
      const p = await psOf('steady');
      return p && p.pod.containers[1]!.restartCount >= 1 ? p : undefined;
    }, 30_000);
    const mainId = before.pod.containers[0]!.id;
    await d.stop();
    d = await startDaemon({ dir: d.dir });
    const after = await waitFor('restarts after the daemon restart', async () => {
      const p = await psOf('steady');
      return p && p.pod.containers[1]!.restartCount >= before.pod.containers[1]!.restartCount + 2 ? p : undefined;
    }, 40_000);
    expect(after.supervisorPid).toBe(before.supervisorPid);
    expect(after.pod.containers[0]!.id).toBe(mainId);
    const { status } = await d.cri.runtime.ContainerStatus({ containerId: mainId }, { deadline: Date.now() + 5000 });
    expect(status.state).toBe('CONTAINER_RUNNING');
    expect((await kube('down', file)).code).toBe(0);
    expect((await d.cri.runtime.ListPodSandbox({}, { deadline: Date.now() + 5000 })).items).toEqual([]);
  });
});
