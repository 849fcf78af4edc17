// Where each cgroup v1 controller's hierarchy is mounted, from the mount table
// (/proc/self/mountinfo): a directory under /sys/fs/cgroup counts as a hierarchy only when a
// filesystem of type "cgroup" is mounted there, and its controllers are the ones the mount's super
// options name. A directory's name proves nothing: a plain directory someone made by hand, named
// "cpu,cpuacct", was once taken for the cpuacct hierarchy and its files read as the pod's usage.
import { posix } from 'node:path';

/** One cgroup v1 mount directly under the cgroup root. */
export interface CgroupV1Mount {
  /** The mount point, e.g. /sys/fs/cgroup/cpu,cpuacct. */
  dir: string;
  /** Its super options: the controllers (cpu, cpuacct, name=systemd...) and flags such as rw. */
  options: string[];
}

/** mountinfo escapes space, tab, newline and backslash in paths as \ooo. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function escapeMountPath(s: string): string {
  return s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * The cgroup v1 mounts whose mount point is directly under `root`, in name order. Of several
 * mounts on one point, the last listed (the one on top) counts; lines that do not parse are
 * skipped (the kernel writes this file; a line we cannot read names no hierarchy).
 *
 * Only the lines that contain root's escaped path followed by a slash are split: a node's mount
 * table is mostly its containers' overlays (hundreds of lines, each with long lowerdir options),
 * and it is read again every few seconds.
 */
export function cgroupV1Mounts(mountinfo: string, root: string): CgroupV1Mount[] {
  const byDir = new Map<string, CgroupV1Mount>();
  const needle = root === '/' ? ' /' : ` ${escapeMountPath(root)}/`;
  for (let at = mountinfo.indexOf(needle); at >= 0;) {
    const start = mountinfo.lastIndexOf('\n', at) + 1;
    let end = mountinfo.indexOf('\n', at);
    if (end < 0) end = mountinfo.length;
    at = mountinfo.indexOf(needle, end);
    // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
    const fields = mountinfo.slice(start, end).split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 4) continue;
    const dir = unescapeMountPath(fields[4]!);
    if (posix.dirname(dir) !== root || dir === root) continue;
    if (fields[sep + 1] !== 'cgroup') {
      byDir.delete(dir); // something else mounted on top hides the hierarchy
      continue;
    }
    byDir.set(dir, { dir: copied(dir), options: fields[sep + 3]!.split(',').map(copied) });
  }
  return [...byDir.values()].sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
}

/**
 * A copy of `s` that holds no reference to the text it was cut from. V8 makes a substring of 13
 * characters or more a view of its parent string, so one kept mount point would keep the whole
 * mount table alive (65 KB with 100 pods running, held by stats' hierarchy cache for good).
 */
function copied(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** The mount point of the first hierarchy (in name order) that has `controller`, if any. */
export function controllerMount(mounts: CgroupV1Mount[], controller: string): string | undefined {
  return mounts.find((m) => m.options.includes(controller))?.dir;
}
