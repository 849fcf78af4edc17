// SELinux labels for a container, with containerd's semantics.
//
// When the node runs SELinux: the container's process label (process.selinuxLabel, set by the
// runtime for the execve) and its mount label (linux.mountLabel: the context= of the container's
// tmpfs and mqueue mounts, and what `selinux_relabel` mounts are relabelled to) are the
// distribution's container defaults (lxc_contexts: container_t / container_file_t) with the
// fields of selinuxOptions put over them — user, role, type, level for the process; user and
// level for the mount label. A container that gives no options takes its pod's. The MCS level,
// when neither gives one, is the pod's own category pair, so every container of a pod shares it
// (and so can share its volumes) while pods stay apart: the pair is chosen at RunPodSandbox,
// unique among live pods (sandbox/mcs-levels.ts), and kept in the pod's record.
//
// When the node does not run SELinux, every SELinux field is ignored, as containerd ignores
// them (its label library returns empty labels and skips relabelling when SELinux is disabled):
// no label reaches the spec, no file is relabelled, and a pod that sets selinuxOptions runs.
import { execFile } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../../errors.js';
import type { SELinuxOption__Output } from '../../gen/runtime/v1/SELinuxOption.js';

export interface SelinuxDefaults {
  process: string;
  file: string;
}

/** The targeted policy's container contexts, used when lxc_contexts cannot be read. */
export const FALLBACK_DEFAULTS: SelinuxDefaults = {
  process: 'system_u:system_r:container_t:s0',
  file: 'system_u:object_r:container_file_t:s0',
};

/** `key = "value"` lines of an lxc_contexts file → the process and file contexts. */
export function parseLxcContexts(text: string): Partial<SelinuxDefaults> {
  const out: Partial<SelinuxDefaults> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(process|file)\s*=\s*"?([^"\s]+)"?\s*$/.exec(line);
    if (m) out[m[1] as 'process' | 'file'] = m[2]!;
  }
  return out;
}

/** The node's defaults: /etc/selinux/config names the policy whose contexts/lxc_contexts we read. */
export function readSelinuxDefaults(): SelinuxDefaults {
  try {
    const type = /^\s*SELINUXTYPE\s*=\s*(\S+)\s*$/m.exec(readFileSync('/etc/selinux/config', 'utf8'))?.[1] ?? 'targeted';
    if (!/^[\w.-]+$/.test(type)) return FALLBACK_DEFAULTS;
    return { ...FALLBACK_DEFAULTS, ...parseLxcContexts(readFileSync(`/etc/selinux/${type}/contexts/lxc_contexts`, 'utf8')) };
  } catch {
    return FALLBACK_DEFAULTS;
  }
}

interface Context { user: string; role: string; type: string; level: string }

function splitContext(label: string): Context {
  const [user = '', role = '', type = '', ...level] = label.split(':');
  return { user, role, type, level: level.join(':') };
}

const join = (c: Context) => [c.user, c.role, c.type, c.level].filter((p, i) => i < 3 || p !== '').join(':');

const NAME = /^[A-Za-z0-9_.]+$/;
const LEVEL = /^[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)?(:[A-Za-z0-9_.,-]+)?$/;

function checkOptions(o: SELinuxOption__Output, field: string): void {
  for (const k of ['user', 'role', 'type'] as const) {
    if (o[k] !== '' && !NAME.test(o[k])) throw new InvalidArgumentError(`${field}.${k} "${o[k].slice(0, 64)}" is not an SELinux ${k} name`);
  }
  if (o.level !== '' && !LEVEL.test(o.level)) throw new InvalidArgumentError(`${field}.level "${o.level.slice(0, 64)}" is not an SELinux level (like s0:c1,c2)`);
}

/** Whether a pod or container gave any selinuxOptions field. */
export const isSet = (o: SELinuxOption__Output | null | undefined): o is SELinuxOption__Output =>
  !!o && (o.user !== '' || o.role !== '' || o.type !== '' || o.level !== '');

export interface SelinuxLabels {
  processLabel: string;
  mountLabel: string;
}

export interface SelinuxLabelInput {
  container: SELinuxOption__Output | null | undefined;
  pod: SELinuxOption__Output | null | undefined;
  /** The pod's own MCS level (its record's selinuxLevel): the level when no option gives one. */
  podLevel: string;
  defaults: SelinuxDefaults;
}

/** The container's labels on a node that runs SELinux. */
export function selinuxLabels(input: SelinuxLabelInput): SelinuxLabels {
  if (isSet(input.container)) checkOptions(input.container, 'securityContext.selinuxOptions');
  if (isSet(input.pod)) checkOptions(input.pod, 'podSandbox securityContext.selinuxOptions');
  const opts = isSet(input.container) ? input.container : isSet(input.pod) ? input.pod : undefined;
  const proc = splitContext(input.defaults.process);
  const file = splitContext(input.defaults.file);
  const level = opts?.level || (isSet(input.pod) && input.pod.level) || input.podLevel;
  if (opts?.user) proc.user = file.user = opts.user;
  if (opts?.role) proc.role = opts.role;
  if (opts?.type) proc.type = opts.type;
  proc.level = file.level = level;
  return { processLabel: join(proc), mountLabel: join(file) };
}

/**
 * Refuse labels the loaded policy does not define, before anything is made for the container:
 * the kernel validates a context written to selinuxfs's `context` file (what libselinux's
 * security_check_context does). Without this the runtime fails late, on its attr/exec write, with
 * an INTERNAL error. `fromOptions`: the pod or container gave selinuxOptions (a bad request),
 * else the labels are the node's own defaults (lxc_contexts: the node is misconfigured).
 */
export function checkLabelsDefined(labels: SelinuxLabels, fromOptions: boolean, contextFile = '/sys/fs/selinux/context'): void {
  for (const [what, label] of [['process', labels.processLabel], ['mount', labels.mountLabel]] as const) {
    let fd: number | undefined;
    try {
      fd = openSync(contextFile, 'r+');
      writeSync(fd, label);
    } catch (err) {
      if (errnoCode(err) !== 'EINVAL') {
        throw new FailedPreconditionError(`SELinux: cannot check the ${what} label ${label} against the loaded policy: ${errnoCode(err) ?? err}`, { cause: err });
      }
      const why = `the ${what} label ${label} is not defined by the node's loaded SELinux policy`;
      throw fromOptions
        ? new InvalidArgumentError(`securityContext.selinuxOptions: ${why}`)
        : new FailedPreconditionError(`${why} (the node's default from lxc_contexts: install a policy that defines it, or set selinuxOptions)`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

/**
 * Host paths a relabel must never touch: relabelling them to a container's label would make the
 * node itself unusable (and give the container its files). The same idea as the refuse-lists of
 * containerd's and CRI-O's label libraries; a path is refused when it IS one of these (after
 * symlinks are resolved), not when it is below one (a volume under /var/lib is fine).
 */
export const RELABEL_REFUSED = [
  '/', '/bin', '/boot', '/dev', '/etc', '/etc/passwd', '/etc/shadow', '/etc/group', '/etc/pki', '/etc/selinux',
  '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/sbin',
  '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/usr/share', '/var',
  '/var/lib', '/var/log', '/var/run', '/var/tmp',
];

/** Throws unless `resolved` (a real, absolute path) may be relabelled. */
export function checkRelabelPath(resolved: string, field: string): void {
  const p = resolved.length > 1 ? resolved.replace(/\/+$/, '') : resolved;
  if (RELABEL_REFUSED.includes(p) || /^\/home\/[^/]+$/.test(p)) {
    throw new InvalidArgumentError(`${field}: selinux_relabel of ${resolved} is refused: relabelling a system directory would break the node`);
  }
}

/** chcon -R -h: every file below `path` gets `label` (security.selinux, symlinks themselves). */
function chcon(label: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('chcon', ['-R', '-h', '--', label, path], { timeout: 300_000, maxBuffer: 1 << 20 }, (err, _o, stderr) => {
      if (!err) return resolve();
      // A filesystem without xattr labels (containerd goes on after ENOTSUP too).
      if (/Operation not supported/.test(stderr)) return resolve();
      reject(new FailedPreconditionError(`chcon ${label} ${path} failed: ${(stderr || err.message).trim().slice(0, 2000)}`, { cause: err }));
    });
  });
}

/** Relabel the host paths of the mounts that ask for it (only called when SELinux is enabled). */
export async function relabelMounts(
  mounts: readonly { hostPath: string; selinuxRelabel: boolean }[],
  mountLabel: string,
): Promise<void> {
  for (const [i, m] of mounts.entries()) {
    if (!m.selinuxRelabel || !m.hostPath) continue;
    const field = `mounts[${i}]`;
    let resolved: string;
    try {
      resolved = await realpath(m.hostPath);
    } catch (err) {
      throw new FailedPreconditionError(`${field}.hostPath ${m.hostPath} cannot be resolved for selinux_relabel: ${errnoCode(err) ?? err}`, { cause: err });
    }
    checkRelabelPath(resolved, field);
    await chcon(mountLabel, resolved);
  }
}
