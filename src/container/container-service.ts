// Container lifecycle: the writable snapshot, the OCI spec, the monitor that creates the
// container and outlives us, and the record that survives restarts.
import { randomBytes } from 'node:crypto';
import { existsSync, constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import {
  DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, errnoCode,
} from '../errors.js';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerResources__Output } from '../gen/runtime/v1/LinuxContainerResources.js';
import type { ImageConfig } from '../image/image-config.js';
import type { ImageService } from '../image/image-service.js';
import { log } from '../log.js';
import { execSync, launchMonitor, readExitFile, type ExecSyncResult } from '../runtime/monitor.js';
import type { OciRuntime } from '../runtime/oci-runtime.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import { Cleaner } from '../lifecycle/cleaner.js';
import { KeyedLock } from '../lifecycle/keyed-lock.js';
import { NameReservations } from '../lifecycle/name-reservations.js';
import { RecordStore } from '../store/record-store.js';
import { isoToNs, nowNs } from '../time.js';
import { buildContainerSpec, readNodeFacts } from './oci-spec/container-spec.js';
import { containerResources } from './oci-spec/resources.js';
import type { OciSpec } from './oci-spec/oci-types.js';
import { ContainerEvents, type ContainerEventType } from './container-events.js';
import { CONTAINER_RECORD, containerPaths, criState, reservedContainerName, type ContainerRecord } from './container-record.js';

/** kubelet caps exec output at 16 MiB; so do we. */
const EXEC_SYNC_MAX_OUTPUT = 16 * 1024 * 1024;
const EXIT_POLL_MS = 250;

export interface ContainerServiceOptions {
  root: string;
  state: string;
  runtimes: Map<string, OciRuntime>;
}

export function cgroupVersion(): 1 | 2 {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
}

function processAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

export class ContainerService {
  readonly store: RecordStore<ContainerRecord>;
  readonly events = new ContainerEvents();
  private readonly names = new NameReservations('container');
  /** One lifecycle operation per id at a time. */
  private readonly locks = new KeyedLock();
  private exitTimer: NodeJS.Timeout | undefined;
  private readonly facts = readNodeFacts(cgroupVersion());

  constructor(
    private readonly opts: ContainerServiceOptions,
    private readonly sandboxes: SandboxService,
    private readonly images: ImageService,
  ) {
    this.store = new RecordStore<ContainerRecord>(join(opts.root, 'containers'), CONTAINER_RECORD);
    sandboxes.attachContainers({
      idsInPod: (podId) => this.store.list().filter((c) => c.podId === podId).map((c) => c.id),
      stopForPod: (id) => this.stop(id, 0),
      removeForPod: (id) => this.remove(id),
    });
  }

  // ---- start-up and exit tracking ------------------------------------------------------------

  async recover(): Promise<void> {
    for (const rec of await this.store.load()) {
      if (!rec.created) {
        log.warn({ container: rec.id }, 'rolling back a container left half-created by a crash');
        await this.destroy(rec);
        continue;
      }
      this.names.claim(rec.reservedName, rec.id);
      await this.refreshExit(rec.id);
      const cur = this.store.get(rec.id)!;
      if (criState(cur) === 'CONTAINER_RUNNING' && !processAlive(cur.monitorPid)) {
        // The monitor died without writing an exit file (node reboot): the container is gone.
        await this.store.update(cur.id, (r) => {
          r.finishedAt = nowNs();
          r.exitCode = 255;
          r.reason = 'Unknown';
          r.message = 'the container monitor is gone and left no exit status';
        });
      }
    }
    this.exitTimer = setInterval(() => void this.pollExits(), EXIT_POLL_MS);
    this.exitTimer.unref();
  }

  close(): void {
    if (this.exitTimer) clearInterval(this.exitTimer);
  }

  private async pollExits(): Promise<void> {
    for (const rec of this.store.list()) {
      if (rec.startedAt && !rec.finishedAt) await this.refreshExit(rec.id).catch((err: unknown) => log.warn({ err }, 'reading exit file'));
    }
  }

  /** Fold a monitor's exit file into the record. */
  private async refreshExit(id: string): Promise<void> {
    const rec = this.store.get(id);
    if (!rec || rec.finishedAt || !rec.created) return;
    const exit = await readExitFile(containerPaths(rec.dir).exitFile);
    if (!exit) return;
    // A container that exits before start never ran: its monitor reports what create left.
    const updated = await this.store.update(id, (r) => {
      r.startedAt ??= r.createdAt;
      // The monitor's clock and ours agree only to the microsecond it printed.
      const finished = isoToNs(exit.exitedAt);
      r.finishedAt = BigInt(finished) < BigInt(r.startedAt) ? r.startedAt : finished;
      r.exitCode = exit.exitCode;
      r.reason = exit.oomKilled ? 'OOMKilled' : exit.exitCode === 0 ? 'Completed' : 'Error';
    });
    this.emit(updated, 'CONTAINER_STOPPED_EVENT');
  }

  private emit(rec: ContainerRecord, type: ContainerEventType): void {
    this.events.emit({ containerId: rec.id, podId: rec.podId, type, createdAt: nowNs() });
  }

  // ---- lookups --------------------------------------------------------------------------------

  get(idOrPrefix: string): ContainerRecord {
    if (!idOrPrefix) throw new InvalidArgumentError('container id must not be empty');
    const hits = this.store.matching(idOrPrefix).filter((c) => c.created);
    if (hits.length === 0) throw new NotFoundError(`container ${idOrPrefix} not found`);
    if (hits.length > 1) throw new InvalidArgumentError(`container id prefix ${idOrPrefix} is ambiguous`);
    return hits[0]!;
  }

  async status(idOrPrefix: string): Promise<ContainerRecord> {
    const rec = this.get(idOrPrefix);
    await this.refreshExit(rec.id);
    return this.store.get(rec.id)!;
  }

  list(): ContainerRecord[] {
    return this.store.list().filter((c) => c.created);
  }

  async spec(id: string): Promise<OciSpec | undefined> {
    try {
      return JSON.parse(await readFile(join(containerPaths(this.get(id).dir).bundle, 'config.json'), 'utf8')) as OciSpec;
    } catch {
      return undefined;
    }
  }

  /** The OCI runtime driving a container (streaming exec runs its own monitor against it). */
  runtimeOf(rec: ContainerRecord): OciRuntime {
    return this.runtimeFor(rec.runtimeHandler);
  }

  private runtimeFor(handler: string): OciRuntime {
    const rt = this.opts.runtimes.get(handler);
    if (!rt) throw new FailedPreconditionError(`runtime handler "${handler}" is not configured`);
    return rt;
  }

  // ---- create ---------------------------------------------------------------------------------

  async create(podId: string, config: ContainerConfig__Output | null | undefined, signal: AbortSignal): Promise<string> {
    if (!config?.metadata?.name) throw new InvalidArgumentError('CreateContainer: config.metadata.name must not be empty');
    if (!config.image?.image) throw new InvalidArgumentError('CreateContainer: config.image.image must name an image');
    const sandbox = this.sandboxes.get(podId);
    this.sandboxes.assertReady(sandbox);
    const id = randomBytes(32).toString('hex');
    const { id: got } = await this.names.run(reservedContainerName(sandbox.id, config), id, signal, () =>
      this.doCreate(id, sandbox.id, config),
    );
    return got;
  }

  private logPath(podId: string, config: ContainerConfig__Output): string {
    const dir = this.sandboxes.get(podId).config.logDirectory;
    if (!config.logPath) return '';
    const clean = normalize(config.logPath);
    if (isAbsolute(clean) || clean.startsWith('..')) {
      throw new InvalidArgumentError(`CreateContainer: config.logPath "${config.logPath}" must be relative to the pod's log directory`);
    }
    if (!dir) throw new InvalidArgumentError('CreateContainer: config.logPath is set but the pod has no log_directory');
    return join(dir, clean);
  }

  private async doCreate(id: string, podId: string, config: ContainerConfig__Output): Promise<void> {
    const clog = log.child({ container: id, pod: podId });
    const sandbox = this.sandboxes.get(podId);
    const image = await this.images.find(config.image!.image);
    if (!image) throw new NotFoundError(`CreateContainer: image "${config.image!.image}" is not present; pull it first`);
    const imageConfig = image.config as ImageConfig;
    const dir = join(this.opts.state, 'containers', id);
    const paths = containerPaths(dir);
    const logPath = this.logPath(podId, config);
    const rec: ContainerRecord = {
      id, podId, reservedName: reservedContainerName(podId, config), config,
      imageId: image.id, imageName: config.image!.userSpecifiedImage || config.image!.image,
      runtimeHandler: sandbox.runtimeHandler, created: false, createdAt: nowNs(), dir, logPath,
      // The CRI's stop_signal wins over the image's STOPSIGNAL.
      stopSignal: config.stopSignal && config.stopSignal !== 'RUNTIME_DEFAULT' ? config.stopSignal : imageConfig.config?.StopSignal,
    };
    await this.store.put(rec);
    const cleaner = new Cleaner(clog);
    cleaner.add('remove record', () => this.store.remove(id));
    try {
      await mkdir(paths.bundle, { recursive: true, mode: 0o700 }); // private: see daemon/private-dirs.ts
      cleaner.add('remove container dir', () => rm(dir, { recursive: true, force: true }));
      const snapshots = this.images.snapshots;
      await snapshots.prepare(id, image.chainId);
      cleaner.add('remove writable layer', () => snapshots.remove(id));
      await snapshots.mount(id, paths.rootfs);
      cleaner.add('unmount rootfs', () => snapshots.unmount(paths.rootfs));
      const spec = await buildContainerSpec({
        id,
        config,
        sandbox: {
          id: sandbox.id,
          config: sandbox.config,
          netnsPath: sandbox.netnsPath,
          ipcnsPath: sandbox.ipcnsPath,
          utsnsPath: sandbox.utsnsPath,
          pidnsPath: this.sandboxes.pidNamespace(sandbox),
          hostname: sandbox.hostname,
          hostsPath: sandbox.files?.hostsPath,
          resolvPath: sandbox.files?.resolvPath,
          hostnamePath: sandbox.files?.hostnamePath,
          shmPath: sandbox.files?.shmPath,
          cgroupParent: sandbox.config.linux?.cgroupParent ?? '',
        },
        image: { config: imageConfig, ref: rec.imageName },
        rootfsPath: paths.rootfs,
        cgroupVersion: cgroupVersion(),
        runtimeFeatures: this.runtimeFor(rec.runtimeHandler).features,
      }, this.facts);
      await writeFile(join(paths.bundle, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
      rec.cgroupsPath = spec.linux.cgroupsPath;
      const u = spec.process.user;
      rec.user = { uid: u.uid, gid: u.gid, additionalGids: u.additionalGids ?? [] };
      if (logPath) await mkdir(dirname(logPath), { recursive: true });
      const runtime = this.runtimeFor(rec.runtimeHandler);
      cleaner.add('delete from runtime', () => runtime.delete(id, true));
      const launched = await launchMonitor({
        runtimeBinary: runtime.binary,
        runtimeRoot: runtime.root,
        id,
        bundle: paths.bundle,
        logPath: logPath || join(dir, 'console.log'),
        exitFile: paths.exitFile,
        attachSocket: paths.attachSocket,
        ctlPath: paths.ctl,
        stdin: config.stdin,
        stdinOnce: config.stdinOnce,
        terminal: config.tty,
      });
      rec.pid = launched.pid;
      rec.monitorPid = launched.monitorPid;
      rec.created = true;
      await this.store.put(rec);
      this.emit(rec, 'CONTAINER_CREATED_EVENT');
      clog.info({ name: config.metadata!.name, image: rec.imageName }, 'container created');
    } catch (err) {
      clog.info({ err: (err as Error).message }, 'container creation failed; rolling back');
      await cleaner.run();
      throw err;
    }
  }

  // ---- start / stop / remove ------------------------------------------------------------------

  async start(idOrPrefix: string): Promise<void> {
    const rec = this.get(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      const cur = this.store.get(rec.id)!;
      const state = criState(cur);
      if (state !== 'CONTAINER_CREATED') {
        throw new FailedPreconditionError(`container ${cur.id} is ${state.slice(10).toLowerCase()}, not created: it cannot be started`);
      }
      // Taken before start: a process that exits at once must not finish before it started.
      const startedAt = nowNs();
      await this.runtimeFor(cur.runtimeHandler).start(cur.id);
      const started = await this.store.update(cur.id, (r) => {
        r.startedAt = startedAt;
      });
      this.emit(started, 'CONTAINER_STARTED_EVENT');
      log.info({ container: cur.id }, 'container started');
    });
  }

  /** Wait until the monitor records the exit; false on timeout. */
  private async waitExit(id: string, timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      await this.refreshExit(id);
      const rec = this.store.get(id);
      if (!rec || rec.finishedAt) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stop: the image's STOPSIGNAL (or SIGTERM), then SIGKILL after `timeout` seconds; idempotent. */
  async stop(idOrPrefix: string, timeoutSeconds: number): Promise<void> {
    // Idempotent like remove: a container that is gone (or never was) is as stopped as it gets
    // (critest's Idempotence specs; containerd and CRI-O answer the same).
    if (this.store.matching(idOrPrefix).length === 0) return;
    const rec = this.get(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      await this.refreshExit(rec.id);
      const cur = this.store.get(rec.id)!;
      const runtime = this.runtimeFor(cur.runtimeHandler);
      const state = criState(cur);
      if (state === 'CONTAINER_EXITED') return;
      if (state === 'CONTAINER_CREATED') {
        // Never started: kill the parked process; the monitor records the exit.
        await runtime.kill(cur.id, 'KILL', true);
        if (!(await this.waitExit(cur.id, 10_000))) await this.markExited(cur.id, 137, 'Error');
        return;
      }
      if (timeoutSeconds > 0) {
        await runtime.kill(cur.id, cur.stopSignal || 'TERM');
        if (await this.waitExit(cur.id, timeoutSeconds * 1000)) return;
      }
      await runtime.kill(cur.id, 'KILL', true);
      if (!(await this.waitExit(cur.id, 10_000))) {
        throw new DeadlineExceededError(`container ${cur.id} did not exit within 10s of SIGKILL`);
      }
    });
  }

  private async markExited(id: string, code: number, reason: string): Promise<void> {
    const rec = await this.store.update(id, (r) => {
      r.startedAt ??= r.createdAt;
      r.finishedAt = nowNs();
      r.exitCode = code;
      r.reason = reason;
    });
    this.emit(rec, 'CONTAINER_STOPPED_EVENT');
  }

  /** Remove a container (stopping it first if it runs); idempotent. */
  async remove(idOrPrefix: string): Promise<void> {
    const hits = this.store.matching(idOrPrefix);
    if (hits.length !== 1) {
      if (hits.length > 1) throw new InvalidArgumentError(`container id prefix ${idOrPrefix} is ambiguous`);
      return;
    }
    const rec = hits[0]!;
    if (rec.created && criState(rec) !== 'CONTAINER_EXITED') await this.stop(rec.id, 0);
    await this.locks.run(rec.id, async () => {
      const cur = this.store.get(rec.id);
      if (!cur) return;
      await this.destroy(cur);
      this.emit(cur, 'CONTAINER_DELETED_EVENT');
      log.info({ container: cur.id }, 'container removed');
    });
  }

  /** Release everything a container holds; used by remove and by crash recovery. */
  private async destroy(rec: ContainerRecord): Promise<void> {
    const paths = containerPaths(rec.dir);
    const runtime = this.opts.runtimes.get(rec.runtimeHandler);
    if (runtime) await runtime.delete(rec.id, true);
    await this.images.snapshots.unmount(paths.rootfs).catch((err: unknown) => {
      if (!['EINVAL', 'ENOENT'].includes(errnoCode(err) ?? '')) throw err;
    });
    await this.images.snapshots.remove(rec.id);
    await rm(rec.dir, { recursive: true, force: true });
    await this.store.remove(rec.id);
    this.names.release(rec.reservedName, rec.id);
  }

  // ---- exec, logs, resources ------------------------------------------------------------------

  private async assertRunning(idOrPrefix: string, what: string): Promise<ContainerRecord> {
    const rec = await this.status(idOrPrefix);
    if (criState(rec) !== 'CONTAINER_RUNNING') {
      throw new FailedPreconditionError(`${what}: container ${rec.id} is not running (${criState(rec).slice(10).toLowerCase()})`);
    }
    return rec;
  }

  /** A process.json for an exec: the container's own process settings with other args. */
  async execProcessFile(rec: ContainerRecord, cmd: string[], tty: boolean): Promise<string> {
    if (cmd.length === 0 || !cmd[0]) throw new InvalidArgumentError('exec: cmd must not be empty');
    const spec = await this.spec(rec.id);
    if (!spec) throw new FailedPreconditionError(`container ${rec.id} has no bundle (was the node rebooted?)`);
    const processSpec = { ...spec.process, args: cmd, terminal: tty };
    const file = join(rec.dir, `exec-${randomBytes(8).toString('hex')}.json`);
    await writeFile(file, JSON.stringify(processSpec), { mode: 0o600 });
    return file;
  }

  async execSync(idOrPrefix: string, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResult> {
    const rec = await this.assertRunning(idOrPrefix, 'ExecSync');
    const runtime = this.runtimeFor(rec.runtimeHandler);
    const file = await this.execProcessFile(rec, cmd, false);
    try {
      const res = await execSync({
        runtimeBinary: runtime.binary, runtimeRoot: runtime.root, id: rec.id, processFile: file,
        timeoutSeconds, maxOutput: EXEC_SYNC_MAX_OUTPUT,
      });
      if (res.timedOut) {
        throw new DeadlineExceededError(`ExecSync: command ${JSON.stringify(cmd)} timed out after ${timeoutSeconds}s and was killed`);
      }
      return res;
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Ask the monitor to reopen the log file (kubelet rotated it). */
  async reopenLog(idOrPrefix: string): Promise<void> {
    const rec = await this.assertRunning(idOrPrefix, 'ReopenContainerLog');
    let fh;
    try {
      fh = await open(containerPaths(rec.dir).ctl, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new FailedPreconditionError(`ReopenContainerLog: the monitor of ${rec.id} is not listening (${errnoCode(err)})`);
    }
    try {
      await fh.write('reopen\n');
    } finally {
      await fh.close();
    }
    // kubelet (and critest) look for the new file as soon as the call returns.
    if (!rec.logPath) return;
    const until = Date.now() + 5000;
    while (!existsSync(rec.logPath)) {
      if (Date.now() > until) throw new DeadlineExceededError(`ReopenContainerLog: the monitor of ${rec.id} did not reopen ${rec.logPath} within 5s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async updateResources(idOrPrefix: string, resources: LinuxContainerResources__Output | null | undefined): Promise<void> {
    const rec = this.get(idOrPrefix);
    const state = criState(rec);
    if (state === 'CONTAINER_EXITED') throw new FailedPreconditionError(`container ${rec.id} has exited: its resources cannot change`);
    const limits = containerResources({
      resources,
      cgroupVersion: cgroupVersion(),
      swapAvailable: this.facts.swapAvailable,
      hugetlbAvailable: this.facts.hugetlbAvailable,
    });
    await this.runtimeFor(rec.runtimeHandler).update(rec.id, limits);
    await this.store.update(rec.id, (r) => {
      r.config.linux = { ...(r.config.linux ?? {}), resources: resources ?? null } as typeof r.config.linux;
    });
  }
}
