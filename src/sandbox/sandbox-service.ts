// Pod sandbox lifecycle: namespaces pinned by crib-pinns (no pause container), pod network,
// pod files, and the pod's record. Containers are the ContainerService's, handed in when this
// service is made; it stops or removes a pod's containers through the PodContainers seam.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, errnoCode, fsError } from '../errors.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import type { LinuxContainerResources__Output } from '../gen/runtime/v1/LinuxContainerResources.js';
import { log } from '../log.js';
import type { PodNetworking } from '../network/pod-networking.js';
import { Cleaner } from '../lifecycle/cleaner.js';
import { crashPoint } from '../lifecycle/crash-point.js';
import { KeyedLock } from '../lifecycle/keyed-lock.js';
import { NameReservations } from '../lifecycle/name-reservations.js';
import { RecordStore } from '../store/record-store.js';
import { Trash } from '../store/trash.js';
import { nowNs } from '../time.js';
import { podInitPidNamespace, type PodNamespacePinner } from './namespaces.js';
import { podFilePaths, releasePodShm, writePodFiles, type PodFiles, type ShmMounts } from './pod-files.js';
import { podUserNamespace } from './user-namespace.js';
import { podInitStartTime } from './pod-init-finder.js';
import { McsLevels } from './mcs-levels.js';
import { SANDBOX_RECORD, reservedPodName, type SandboxRecord } from './sandbox-record.js';

/** What the sandbox service needs from the container side. */
export interface PodContainers {
  idsInPod(podId: string): string[];
  stopForPod(containerId: string): Promise<void>;
  removeForPod(containerId: string): Promise<void>;
}

export interface SandboxServiceOptions {
  root: string;
  state: string;
  network: PodNetworking;
  handlers: Set<string>;
  defaultHandler: string;
  /** Whether a handler runs pods in user namespaces (runtime-features.ts); none when absent. */
  userNamespaces?: (handler: string) => boolean;
  /** The container side: stops and removes a pod's containers with the pod. */
  containers: PodContainers;
  /** Pins the pod's namespaces and runs its PID-namespace init (crib-pinns: `cribPinns`). */
  namespaces: PodNamespacePinner;
  /** Mounts the pod's /dev/shm (`tmpfsShm`). */
  shm: ShmMounts;
  /** Whether the node runs SELinux: then each pod gets an MCS level no other live pod holds. */
  selinux?: boolean;
  /** Chooses those levels; a test hands one its own candidates to force a collision. */
  mcsLevels?: McsLevels;
  /**
   * Told of each pod made ready, stopped or removed, with its record as of then (the container
   * side sends these to GetContainerEvents' subscribers).
   */
  onPodEvent?: (kind: PodLifecycleEvent, pod: SandboxRecord) => void;
}

/** What befell a pod: made ready by RunPodSandbox, stopped, removed. */
export type PodLifecycleEvent = 'ready' | 'stopped' | 'removed';

function checkMetadata(config: PodSandboxConfig__Output | null | undefined): asserts config is PodSandboxConfig__Output {
  const m = config?.metadata;
  if (!config || !m) throw new InvalidArgumentError('RunPodSandbox: config.metadata is required');
  for (const field of ['name', 'namespace', 'uid'] as const) {
    if (!m[field]) throw new InvalidArgumentError(`RunPodSandbox: config.metadata.${field} must not be empty`);
    if (/[/\0]/.test(m[field])) throw new InvalidArgumentError(`RunPodSandbox: config.metadata.${field} "${m[field]}" contains "/" or NUL`);
  }
}

export class SandboxService {
  private readonly store: RecordStore<SandboxRecord>;
  private readonly names = new NameReservations('pod sandbox');
  private readonly containers: PodContainers;
  /** One lifecycle operation per id at a time. */
  private readonly locks = new KeyedLock();
  /** The MCS levels of the live pods (every record but those rolled back at start-up). */
  private readonly levels: McsLevels;
  /** Removed pods' dirs, deleted after RemovePodSandbox answered (store/trash.ts). */
  private readonly trash: Trash;

  constructor(private readonly opts: SandboxServiceOptions) {
    this.store = new RecordStore<SandboxRecord>(join(opts.root, 'pods'), SANDBOX_RECORD);
    // A dir only reaches the trash with its namespaces and its shm unmounted (the pinned files
    // are deleted there); an entry a crash left is released again before its files are deleted
    // (never through a mount).
    this.trash = new Trash(join(opts.state, 'pods-trash'), { release: (entry) => this.releaseKernelObjects(entry) });
    this.containers = opts.containers;
    this.levels = opts.mcsLevels ?? new McsLevels();
  }

  /** Pods holding a network from the current backend. */
  networkedPods(): SandboxRecord[] {
    return this.store.list().filter((r) => r.network !== undefined && (r.state === 'ready' || r.state === 'stopping'));
  }

  /** Switch the pod network backend (UpdateRuntimeConfig's pod CIDR); only while no pod uses one. */
  replaceNetwork(network: PodNetworking): void {
    if (this.networkedPods().length > 0) {
      throw new FailedPreconditionError('the pod CIDR cannot change while pods have networks: stop them first');
    }
    this.opts.network = network;
  }

  /**
   * Load records and finish or undo what a crash interrupted (see sandbox-record.ts); release
   * leaked IPs. Runs after the containers' recovery: finishing a stop or a removal stops or
   * removes the pod's containers.
   */
  async recover(): Promise<void> {
    for (const rec of await this.store.load()) {
      if (rec.state === 'creating') {
        log.warn({ pod: rec.id }, 'rolling back a pod sandbox left half-created by a crash');
        await this.teardown(rec);
        await this.store.remove(rec.id);
        continue;
      }
      this.names.claim(rec.reservedName, rec.id);
      this.holdLevel(rec);
      // A stop a crash cut short between its record and its unmounts (idempotent, and cheap when
      // there is nothing left to unmount).
      if (rec.state === 'notready') this.releaseStoppedPod(rec);
      if (rec.state !== 'stopping' && rec.state !== 'removing') continue;
      const what = rec.state === 'stopping' ? 'stop' : 'removal';
      log.warn({ pod: rec.id }, `finishing the ${what} of a pod sandbox a crash interrupted`);
      // A step that fails now (a CNI DEL refused) must not keep the daemon from serving: the pod
      // stays NOTREADY with its intent, and kubelet's next StopPodSandbox or RemovePodSandbox
      // finishes it.
      await (rec.state === 'stopping' ? this.stop(rec.id) : this.remove(rec.id)).catch((err: unknown) =>
        log.error({ pod: rec.id, err }, `finishing the ${what} of a pod sandbox failed; kubelet's retry will finish it`));
    }
    await this.deleteOrphanDirs();
    const leaked = await this.opts.network.reconcile(this.store.list().filter((r) => r.state === 'ready').map((r) => r.id));
    if (leaked.length) log.info({ pods: leaked }, 'released network resources of pods that no longer exist');
  }

  get(idOrPrefix: string): SandboxRecord {
    if (!idOrPrefix) throw new InvalidArgumentError('pod sandbox id must not be empty');
    const hits = this.store.matching(idOrPrefix);
    if (hits.length === 0) throw new NotFoundError(`pod sandbox ${idOrPrefix} not found`);
    if (hits.length > 1) throw new InvalidArgumentError(`pod sandbox id prefix ${idOrPrefix} is ambiguous`);
    return hits[0]!;
  }

  find(idOrPrefix: string): SandboxRecord | undefined {
    const hits = this.store.matching(idOrPrefix);
    return hits.length === 1 ? hits[0] : undefined;
  }

  list(): SandboxRecord[] {
    return this.store.list().filter((r) => r.state !== 'creating');
  }

  /** Every record, those still being created too (they count against the listed-size budget). */
  allRecords(): SandboxRecord[] {
    return this.store.list();
  }

  async run(config: PodSandboxConfig__Output | null | undefined, handler: string, signal: AbortSignal): Promise<string> {
    checkMetadata(config);
    const runtimeHandler = handler || this.opts.defaultHandler;
    if (!this.opts.handlers.has(runtimeHandler)) {
      throw new InvalidArgumentError(`RunPodSandbox: runtime handler "${handler}" is not configured (have: ${[...this.opts.handlers].join(', ')})`);
    }
    this.checkUserNamespace(config, runtimeHandler);
    const id = randomBytes(32).toString('hex');
    const { id: got } = await this.names.run(reservedPodName(config), id, signal, () => this.create(id, config, runtimeHandler));
    return got;
  }

  /** Refuse a user namespace the pod cannot have, before anything is made. */
  private checkUserNamespace(config: PodSandboxConfig__Output, handler: string): void {
    const ns = config.linux?.securityContext?.namespaceOptions;
    const field = 'RunPodSandbox: linux.securityContext.namespaceOptions.usernsOptions';
    if (!podUserNamespace(ns?.usernsOptions, field)) return;
    // The host's network, IPC or PID namespace belongs to the host's user namespace: the pod's
    // root could not administer them (sysfs, sysctls, /proc), and kubelet refuses hostUsers:
    // false with them unless the runtime reports userNamespacesHostNetwork, which crib does not.
    for (const [kind, mode] of [['network', ns?.network], ['ipc', ns?.ipc], ['pid', ns?.pid]] as const) {
      if (mode === 'NODE')
        throw new InvalidArgumentError(`${field}: a user namespace cannot be combined with the host's ${kind} namespace (namespaceOptions.${kind} NODE)`);
    }
    if (!this.opts.userNamespaces?.(handler))
      throw new InvalidArgumentError(`${field}: runtime handler "${handler}" does not support user namespaces (its features document lacks idmapped mounts)`);
  }

  private async create(id: string, config: PodSandboxConfig__Output, runtimeHandler: string): Promise<void> {
    const plog = log.child({ pod: id });
    const ns = config.linux?.securityContext?.namespaceOptions;
    const hostNetwork = ns?.network === 'NODE';
    const hostIpc = ns?.ipc === 'NODE';
    const sharedPid = ns?.pid === 'POD';
    const userns = podUserNamespace(ns?.usernsOptions, 'usernsOptions'); // checked in run()
    // No hostname asked for: the node's, as CRI-O does (metadata.name need not be a valid one).
    const hostname = config.hostname || (hostNetwork ? '' : osHostname());
    const dir = join(this.opts.state, 'pods', id);
    const rec: SandboxRecord = {
      id,
      reservedName: reservedPodName(config),
      config,
      runtimeHandler,
      state: 'creating',
      createdAt: nowNs(),
      dir,
      hostname,
      hostNetwork,
    };
    this.takeLevel(rec);
    const cleaner = new Cleaner(plog);
    cleaner.add('release MCS level', () => this.levels.release(id));
    const setupOpts = {
      portMappings: config.portMappings,
      hostname,
      podName: config.metadata!.name,
      podNamespace: config.metadata!.namespace,
    };
    let filesWritten: Promise<PodFiles> | undefined;
    try {
      // The record goes to disk before anything start-up could only find through it: a crash
      // from then on is rolled back at start-up. The built-in network, whose crib-pinns attaches
      // the pod while pinning its namespaces (one helper process per pod), takes the pod's
      // addresses meanwhile: start-up frees those of pods without a record (reconcile), so they
      // need not wait for the record's fsyncs.
      const [recorded, prepared] = await Promise.allSettled([
        this.store.put(rec),
        hostNetwork ? undefined : this.opts.network.prepareAttach?.(id, setupOpts).then((a) => {
          crashPoint('RunPodSandbox:after-addresses');
          return a;
        }),
      ]);
      if (recorded.status === 'fulfilled') cleaner.add('remove record', () => this.store.remove(id));
      const attach = prepared.status === 'fulfilled' ? prepared.value : undefined;
      // A crash from here on is rolled back by pod id (network teardown needs no namespace).
      if (attach) cleaner.add('tear down network', () => this.opts.network.teardown(id));
      // The record's failure first: it is what nothing may be made without.
      if (recorded.status === 'rejected') throw recorded.reason;
      if (prepared.status === 'rejected') throw prepared.reason;
      crashPoint('RunPodSandbox:after-record');
      if (config.logDirectory) await mkdir(config.logDirectory, { recursive: true, mode: 0o755 });
      await mkdir(dir, { recursive: true, mode: 0o700 }); // private: see daemon/private-dirs.ts
      cleaner.add('remove pod dir', () => rm(dir, { recursive: true, force: true }));
      const filesDir = join(dir, 'files');
      const writeFiles = (ip: string | undefined) => writePodFiles(filesDir, {
        hostname: hostname || osHostname(), ip, dns: config.dnsConfig, hostNetwork, hostIpc,
      }, this.opts.shm);
      // Idempotent: also when the mount was never made (a crash's rollback does the same).
      cleaner.add('release shm', () => releasePodShm(podFilePaths(filesDir, hostIpc), this.opts.shm));
      // The pod's files need nothing the pinning makes but, for /etc/hosts, the pod's address:
      // with the built-in network (allocated already) or the node's (none), they are written
      // while the namespaces are pinned. A CNI backend's address comes with its setup, after.
      if (attach || hostNetwork) {
        filesWritten = writeFiles(attach?.ip);
        filesWritten.catch(() => undefined); // awaited below, or before the rollback
      }
      const sysctls = config.linux?.sysctls ?? {};
      const pinned = await this.opts.namespaces.pin({
        dir: join(dir, 'ns'),
        net: !hostNetwork,
        ipc: !hostIpc,
        uts: !hostNetwork,
        hostname: hostNetwork ? undefined : hostname,
        sysctls,
        user: userns,
        network: attach?.pinnsArgs,
      });
      cleaner.add('unpin namespaces', () => this.opts.namespaces.unpin(pinned.dir));
      crashPoint('RunPodSandbox:after-pin');
      rec.netnsPath = pinned.net;
      rec.ipcnsPath = pinned.ipc;
      rec.utsnsPath = pinned.uts;
      if (pinned.user && userns) rec.userns = { path: pinned.user, ...userns };
      if (sharedPid) {
        const pid = await this.opts.namespaces.startPodInit(pinned.dir);
        rec.podInitPid = pid;
        rec.podInitStartTime = podInitStartTime(pid);
        cleaner.add('stop pod init', () => this.opts.namespaces.stopPodInit(pid));
        // Not recorded yet: a rollback at start-up finds this init by the pod's namespaces.
        crashPoint('RunPodSandbox:after-pod-init');
      }
      // The namespaces and the pod init as soon as they exist: a CNI backend's DEL wants the netns
      // path. Not for the built-in network, whose teardown goes by pod id: a rollback of the
      // 'creating' record finds the pinned files in the pod dir and the pod init in them. An
      // intent (no directory sync): a power cut takes the namespaces with it.
      if (!attach) await this.store.put(rec, { syncDir: false });
      if (rec.netnsPath) {
        if (attach) rec.network = await attach.finish(rec.netnsPath);
        else {
          rec.network = await this.opts.network.setup(id, rec.netnsPath, setupOpts);
          cleaner.add('tear down network', () => this.opts.network.teardown(id, rec.netnsPath));
        }
        crashPoint('RunPodSandbox:after-network');
      }
      rec.files = await (filesWritten ?? writeFiles(rec.network?.ip));
      crashPoint('RunPodSandbox:after-files');
      rec.state = 'ready';
      await this.store.put(rec);
      plog.info({ name: rec.reservedName, ip: rec.network?.ip }, 'pod sandbox ready');
      this.opts.onPodEvent?.('ready', rec);
    } catch (err) {
      plog.info({ err: (err as Error).message }, 'pod sandbox creation failed; rolling back');
      // Files still being written when a step beside them failed are done before their directory goes.
      await filesWritten?.catch(() => undefined);
      await cleaner.run();
      throw err;
    }
  }

  /**
   * UpdatePodSandboxResources: kubelet has already resized the pod cgroup it owns; the runtime's
   * part is to know the new figures (CRI-O and containerd hand them to NRI plugins). crib records
   * them and reports them in the pod's verbose status.
   */
  async updateResources(
    idOrPrefix: string,
    overhead: LinuxContainerResources__Output | null,
    resources: LinuxContainerResources__Output | null,
  ): Promise<void> {
    const rec = this.get(idOrPrefix);
    await this.locks.run(rec.id, () => this.store.update(rec.id, (r) => {
      r.resources = { overhead, resources };
    }));
  }

  /** The PID namespace file containers of a shared-PID pod join. */
  pidNamespace(rec: SandboxRecord): string | undefined {
    return rec.podInitPid ? podInitPidNamespace(rec.podInitPid) : undefined;
  }

  /** Stop every container and release the network; idempotent. */
  async stop(idOrPrefix: string): Promise<void> {
    const rec = this.find(idOrPrefix);
    // kubelet may stop a pod it already removed: that is success (CRI: idempotent).
    if (!rec) return;
    await this.locks.run(rec.id, async () => {
      let cur = this.store.get(rec.id);
      if (!cur) return;
      if (cur.state !== 'ready' && cur.state !== 'stopping') {
        for (const cid of this.containers.idsInPod(rec.id)) await this.containers.stopForPod(cid);
        // What an unmount failing in the stop left (idempotent, cheap when nothing is left).
        await this.releaseStoppedPod(cur);
        return;
      }
      // The outcome's record is written and synced under a temp name while the intent is (two
      // syncs side by side, not one after the other); it goes in place only once the teardown
      // is done, and nothing else changes the record meanwhile (the pod's lock). A crash before
      // then leaves the temp file to start-up's sweep. Once it is in place, the pod's kernel
      // objects go while its directory syncs: never before, as a stop that start-up finishes
      // tears the network down again, and a CNI plugin's DEL fails on a namespace file that is
      // no longer a namespace.
      const stopping = cur;
      const outcome = this.store.prepare({ ...structuredClone(cur), state: 'notready' }, { onRenamed: () => this.releaseStoppedPod(stopping) });
      outcome.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
      try {
        // The intent first: from here on the pod is reported NOTREADY, and a crash is finished
        // at start-up, never left READY with a network it no longer has.
        if (cur.state === 'ready') {
          // No directory sync: the outcome's commit syncs it before the answer, and a power cut
          // before then takes what the stop undoes with it.
          cur = await this.store.update(cur.id, (r) => {
            r.state = 'stopping';
          }, { syncDir: false });
          crashPoint('StopPodSandbox:after-intent');
        }
        for (const cid of this.containers.idsInPod(rec.id)) await this.containers.stopForPod(cid);
        crashPoint('StopPodSandbox:after-containers');
        if (cur.podInitPid) await this.opts.namespaces.stopPodInits(cur, join(cur.dir, 'ns'), false);
        crashPoint('StopPodSandbox:after-pod-init');
        if (cur.netnsPath) await this.opts.network.teardown(cur.id, cur.netnsPath);
        crashPoint('StopPodSandbox:after-network');
        const stopped = await (await outcome).commit();
        this.opts.onPodEvent?.('stopped', stopped);
      } catch (err) {
        await (await outcome.catch(() => undefined))?.abort();
        throw err;
      }
      log.info({ pod: cur.id }, 'pod sandbox stopped');
    });
  }

  /** Remove the pod and everything it holds, even after a half-failed run; idempotent. */
  async remove(idOrPrefix: string): Promise<void> {
    const rec = this.find(idOrPrefix);
    if (!rec) return;
    await this.locks.run(rec.id, async () => {
      let cur = this.store.get(rec.id);
      if (!cur) return;
      // Whether the network is still held: a notready pod gave it back when it stopped. A
      // removal a crash interrupted does not know any more, and tears it down again (idempotent).
      const holdsNetwork = cur.state !== 'notready';
      if (holdsNetwork && cur.state !== 'removing') {
        // Never READY without its network: the intent goes first when the network is to be torn
        // down. A notready pod needs none: each container's removal is durable on its own, and
        // nothing of the pod itself changes before its record is removed. No directory sync:
        // the record's removal syncs it before the answer, and a power cut before then leaves
        // the pod's record, which kubelet's retry removes (idempotent).
        cur = await this.store.update(cur.id, (r) => {
          r.state = 'removing';
        }, { syncDir: false });
        crashPoint('RemovePodSandbox:after-intent');
      }
      // Each removal durable (marked) before the next step; their remains are deleted by the
      // container service's queue, which this waits for until each one's runtime state is gone:
      // the containers' cgroups are inside the pod's, which kubelet removes once the pod is gone
      // (container-service.ts removeForPod).
      for (const cid of this.containers.idsInPod(cur.id)) await this.containers.removeForPod(cid);
      crashPoint('RemovePodSandbox:after-containers');
      // A network that will not let go (a CNI DEL failing) fails the call and keeps the pod, its
      // namespace included, so kubelet's retry can run DEL again, as after StopPodSandbox
      // (containerd does the same): removing it anyway would leak the address for good.
      if (holdsNetwork && cur.netnsPath) await this.opts.network.teardown(cur.id, cur.netnsPath);
      crashPoint('RemovePodSandbox:after-network');
      await this.stopPodInits(cur, join(cur.dir, 'ns'), false);
      // The removal is durable once the record's file is gone and its directory synced: the pod
      // is then gone for start-up too, which deletes a pod dir without a record
      // (deleteOrphanDirs), its pinned namespaces included. The pod's own objects go while the
      // directory syncs (about a millisecond of a disk's journal): the record's file is gone for
      // every process and for a kill -9 already. A power cut before the sync ends may bring the
      // record back without its dir, as every reboot leaves the pods of a tmpfs state dir: a
      // NOTREADY pod that kubelet's next removal removes.
      const removing = cur;
      await this.store.remove(removing.id, { alongsideSync: () => this.releasePodDir(removing) });
      this.names.release(removing.reservedName, removing.id);
      this.levels.release(removing.id);
      this.opts.onPodEvent?.('removed', removing);
      log.info({ pod: cur.id }, 'pod sandbox removed');
    });
  }

  /**
   * A removed pod's kernel objects and dir, once its record's file is gone. The kernel's objects
   * go before the answer (a netns path kubelet or a CNI plugin holds must not outlive the pod),
   * unmounted in place (one trip to the thread pool, while the record's directory syncs); the
   * dir's files, the pinned ones among them, after it, from the trash. An unmount the kernel
   * refuses is tried again by the trash (which never deletes through a mount) and, failing that,
   * by the next start-up's sweep.
   */
  private async releasePodDir(pod: SandboxRecord): Promise<void> {
    crashPoint('RemovePodSandbox:after-record');
    await this.unmountOrLog(pod, 'releasing a removed pod\'s namespaces or shm failed; its deletion tries again');
    crashPoint('RemovePodSandbox:after-teardown');
    await this.trash.discard(pod.dir);
  }

  /**
   * A stopped pod's namespaces and /dev/shm, as containerd's StopPodSandbox releases them: no
   * process of the pod is left to use them, and none may start (a notready pod takes no
   * container). Their files stay, unmounted, until the removal deletes the pod's dir. The kernel
   * then destroys the network namespace, and the pod's veth with it, in the background while
   * the pod waits for kubelet's removal, not during it (four unmounts, each waiting for an RCU
   * grace period, were half of RemovePodSandbox's time). A failure is logged and left to the
   * next stop or the removal, which unmount again.
   */
  private async releaseStoppedPod(pod: SandboxRecord): Promise<void> {
    await this.unmountOrLog(pod, 'releasing a stopped pod\'s namespaces or shm failed; the next stop or its removal tries again');
  }

  /** unmountKernelObjects for a pod whose call goes on when it fails: logged as `failure`; never rejects. */
  private async unmountOrLog(pod: SandboxRecord, failure: string): Promise<void> {
    try {
      await this.unmountKernelObjects(pod.dir, pod.files);
    } catch (err) {
      log.error({ pod: pod.id, err }, failure);
    }
  }

  /** Resolves once the pod dirs removed so far are deleted (the daemon stops). */
  async removalsSettled(): Promise<void> {
    await this.trash.settled();
  }

  /**
   * Pod dirs without a record are what a crash between a removal's record and its dir's move to
   * the trash left: their namespaces are unpinned and their files deleted. Then the trash is
   * emptied. Start-up only, after the records are loaded and before any pod is made.
   */
  private async deleteOrphanDirs(): Promise<void> {
    const podsDir = join(this.opts.state, 'pods');
    let names: string[] = [];
    try {
      names = await readdir(podsDir);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw fsError(err, podsDir, 'list');
    }
    for (const name of names) {
      // Only what crib makes there: a dir named by a pod id.
      if (!/^[0-9a-f]{64}$/.test(name) || this.store.get(name)) continue;
      log.warn({ pod: name }, 'deleting the dir of a pod whose removal a crash interrupted');
      await this.stopPodInits({}, join(podsDir, name, 'ns'), true);
      await this.releaseKernelObjects(join(podsDir, name));
      await this.trash.discard(join(podsDir, name));
    }
    await this.trash.settled();
    const swept = await this.trash.sweep();
    if (swept) log.info({ dirs: swept }, 'deleted removed pod dirs a stop or crash left in the trash');
  }

  /** The pod's init (with `search`, any in the namespaces pinned in nsDir); never fails. */
  private async stopPodInits(rec: Pick<SandboxRecord, 'podInitPid' | 'podInitStartTime'>, nsDir: string, search: boolean): Promise<void> {
    await this.opts.namespaces.stopPodInits(rec, nsDir, search).catch((err: unknown) => log.warn({ err }, 'stopping pod init'));
  }

  /** Unmounts the pod's /dev/shm and its pinned namespaces, leaving the files; idempotent. */
  private async unmountKernelObjects(dir: string, files?: SandboxRecord['files']): Promise<void> {
    await releasePodShm(files ?? { shmPath: join(dir, 'files', 'shm') }, this.opts.shm);
    await this.opts.namespaces.unmount(join(dir, 'ns'));
  }

  /** Unmounts the pod's /dev/shm and unpins its namespaces, files too; idempotent. */
  private async releaseKernelObjects(dir: string, files?: SandboxRecord['files']): Promise<void> {
    await this.unmountKernelObjects(dir, files);
    await this.opts.namespaces.unpin(join(dir, 'ns'));
  }

  /**
   * A new pod's MCS level, before its record is first written: its own pair when the node runs
   * SELinux and the pod's selinuxOptions name no level. A level the options name is held too,
   * so that no pod is given it (pods naming the same level share it: they asked to).
   */
  private takeLevel(rec: SandboxRecord): void {
    const named = rec.config.linux?.securityContext?.selinuxOptions?.level;
    if (named) this.levels.reserve(rec.id, named);
    else if (this.opts.selinux) rec.selinuxLevel = this.levels.allocate(rec.id);
  }

  /** A pod found at start-up keeps the level it has (recorded, or named by its options). */
  private holdLevel(rec: SandboxRecord): void {
    const level = rec.selinuxLevel || rec.config.linux?.securityContext?.selinuxOptions?.level;
    if (level) this.levels.reserve(rec.id, level);
  }

  /** Undoes a creation a crash interrupted: everything the pod may hold. */
  private async teardown(rec: SandboxRecord): Promise<void> {
    // Also an init the record never learnt of (RunPodSandbox interrupted before writing it).
    const search = rec.state === 'creating' && rec.config.linux?.securityContext?.namespaceOptions?.pid === 'POD';
    await this.stopPodInits(rec, join(rec.dir, 'ns'), search);
    await this.opts.network.teardown(rec.id, rec.netnsPath).catch((err: unknown) => log.warn({ err }, 'network teardown'));
    await this.releaseKernelObjects(rec.dir, rec.files);
    await rm(rec.dir, { recursive: true, force: true });
  }

  assertReady(rec: SandboxRecord): void {
    if (rec.state !== 'ready') throw new FailedPreconditionError(`pod sandbox ${rec.id} is not ready (state ${rec.state})`);
  }
}
