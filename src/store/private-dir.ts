// Directories only the daemon may enter. A directory's mode is the one barrier between host
// users and what lies below it, so an existing directory whose mode lets more in than its
// owner wants is tightened: bits are only ever taken away, never added (an operator who made
// a dir tighter than crib would keeps it that way).
import { chmod, chown, lstat, stat } from 'node:fs/promises';
import { errnoCode } from '../errors.js';

export interface DirAccess {
  /** The widest mode the directory may have (0o700, or 0o710 for a group that must traverse). */
  mode: number;
  /** The group that mode's group bits are for; undefined: the owner's group, left as it is. */
  gid?: number;
}

/** What tightenDir changed; modes as octal strings for the log. */
export interface DirChange {
  path: string;
  from: string;
  to: string;
  /** Set when the owner (uid:gid) changed too. */
  owner?: { from: string; to: string };
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

/**
 * Make directory `path` no looser than `access`: clear every mode bit it does not allow, and
 * give it to this process's user (and `access.gid`) when someone else owns it — another owner
 * could loosen it again at will. A missing path, or one that is not a directory, is left alone
 * (undefined). `follow`: the path may be a symlink to the directory (the configured root and
 * state dirs); below them crib never makes symlinks, so one is not followed.
 */
export async function tightenDir(path: string, access: DirAccess, follow = false): Promise<DirChange | undefined> {
  let st;
  try {
    st = follow ? await stat(path) : await lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  if (!st.isDirectory()) return undefined;
  const uid = process.geteuid?.() ?? 0;
  const gid = access.gid ?? st.gid;
  let owner: DirChange['owner'];
  if (st.uid !== uid || st.gid !== gid) {
    // chown before chmod: chown may clear the setgid bit, chmod then sets the final mode.
    await chown(path, uid, gid);
    owner = { from: `${st.uid}:${st.gid}`, to: `${uid}:${gid}` };
  }
  const mode = st.mode & 0o7777;
  const tight = mode & access.mode;
  if (tight !== mode || owner) await chmod(path, tight);
  if (tight === mode && !owner) return undefined;
  return { path, from: octal(mode), to: octal(tight), ...(owner ? { owner } : {}) };
}
