// The host mount a path lives on, from /proc/self/mountinfo: propagation of a bind source
// decides whether the container may ask for rslave/rshared (a private source would silently
// never propagate anything, so we refuse it as containerd does).
import { readFile } from 'node:fs/promises';

export interface MountInfo {
  mountPoint: string;
  /** Optional fields: "shared:N", "master:N", "propagate_from:N", "unbindable". */
  optional: string[];
}

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (fields.length < 7 || sep < 6) continue;
    out.push({ mountPoint: unescape(fields[4]!), optional: fields.slice(6, sep) });
  }
  return out;
}

/** The mount `path` (absolute, symlinks resolved) is on: the last, longest matching entry. */
export async function lookupMount(path: string, mountinfo?: string): Promise<MountInfo | undefined> {
  const mounts = parseMountInfo(mountinfo ?? (await readFile('/proc/self/mountinfo', 'utf8')));
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const under = mp === '/' || path === mp || path.startsWith(`${mp}/`);
    // Later entries stack on top of earlier ones at the same mount point.
    if (under && (best === undefined || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export const isShared = (m: MountInfo): boolean => m.optional.some((o) => o.startsWith('shared:'));
export const isSlave = (m: MountInfo): boolean => m.optional.some((o) => o.startsWith('master:'));
