// Who the container process runs as. The CRI security context wins over the image USER; names
// are looked up in the container's own /etc/passwd and /etc/group (never the node's), and the
// supplementary groups follow SupplementalGroupsPolicy as containerd applies it.
import { InvalidArgumentError } from '../../errors.js';
import type { LinuxContainerSecurityContext__Output } from '../../gen/runtime/v1/LinuxContainerSecurityContext.js';
import { type EtcFiles, readEtcFiles } from './etc-files.js';
import type { OciUser } from './oci-types.js';

// runc (and so crib-runtime's callers' expectations) accept ids up to INT32_MAX only.
const MAX_ID = 0x7fffffff;

export interface UserInput {
  securityContext: LinuxContainerSecurityContext__Output | null | undefined;
  /** The image config's User ("", "name", "uid", "name:group", "uid:gid"). */
  imageUser: string | undefined;
  /**
   * Where /etc/passwd and /etc/group are read: the layers the container's rootfs is mounted
   * from, top first (rootfs-path.ts); a plain rootfs directory is its one layer.
   */
  rootfsLayers: readonly string[];
  /**
   * Those layers' /etc/passwd and /etc/group when the caller has them already (an image's, kept
   * by etc-files.ts's cache); read from `rootfsLayers` otherwise.
   */
  etcFiles?: EtcFiles;
  // No runAsNonRoot: CRI does not carry it; kubelet checks it against ImageStatus before
  // CreateContainer.
}

/** A numeric id from the user/group spec, or undefined when the text is a name. */
function numericId(text: string, what: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ID) {
    throw new InvalidArgumentError(`${what} ${text} is out of range (0..${MAX_ID})`);
  }
  return n;
}

interface UserSpec {
  /** The user part: a uid or a name. */
  user: string;
  group?: string;
  /** Where the spec came from, for error messages. */
  source: string;
}

function userSpec(sc: LinuxContainerSecurityContext__Output | null | undefined, imageUser: string | undefined): UserSpec {
  const group = sc?.runAsGroup ? sc.runAsGroup.value : undefined;
  if (sc?.runAsUsername) return { user: sc.runAsUsername, group, source: 'runAsUsername' };
  if (sc?.runAsUser) return { user: sc.runAsUser.value, group, source: 'runAsUser' };
  // A group without a user would silently pair with whatever user the image names: refused, as
  // containerd and CRI-O do (critest checks it).
  if (group !== undefined) {
    throw new InvalidArgumentError('securityContext.runAsGroup is set without runAsUser or runAsUsername');
  }
  const image = imageUser ?? '';
  if (image !== '') {
    const parts = image.split(':');
    if (parts.length > 2) throw new InvalidArgumentError(`image USER "${image}" is not "user", "user:group" or "uid:gid"`);
    return { user: parts[0]!, group: parts[1], source: `image USER "${image}"` };
  }
  return { user: '0', source: 'the default user' };
}

export async function resolveUser(input: UserInput): Promise<OciUser> {
  const sc = input.securityContext;
  const spec = userSpec(sc, input.imageUser);
  const etc = input.etcFiles ?? readEtcFiles(input.rootfsLayers);

  let uid: number;
  let gid = 0;
  let username: string | undefined;
  const numericUid = numericId(spec.user, `${spec.source}: uid`);
  if (numericUid !== undefined) {
    uid = numericUid;
    const entry = (await etc.users())?.find((u) => u.uid === uid);
    // An unknown numeric uid is fine (gid 0), as in Docker and containerd.
    if (entry) {
      gid = entry.gid;
      username = entry.name;
    }
  } else {
    if (spec.user === '') throw new InvalidArgumentError(`${spec.source}: empty user name`);
    const users = await etc.users();
    const entry = users?.find((u) => u.name === spec.user);
    if (!entry) {
      throw new InvalidArgumentError(
        `${spec.source}: user "${spec.user}" not found in the container's /etc/passwd${users === null ? ' (file missing in the image)' : ''}`,
      );
    }
    if (entry.uid > MAX_ID) throw new InvalidArgumentError(`${spec.source}: uid ${entry.uid} of "${spec.user}" is out of range`);
    uid = entry.uid;
    gid = entry.gid;
    username = entry.name;
  }

  if (spec.group !== undefined && spec.group !== '') {
    const numericGid = numericId(spec.group, `${spec.source}: gid`);
    if (numericGid !== undefined) gid = numericGid;
    else {
      const groups = await etc.groups();
      const entry = groups?.find((g) => g.name === spec.group);
      if (!entry) {
        throw new InvalidArgumentError(
          `${spec.source}: group "${spec.group}" not found in the container's /etc/group`,
        );
      }
      gid = entry.gid;
    }
  }

  const gids = new Set<number>([gid]);
  const policy = sc?.supplementalGroupsPolicy ?? 'Merge';
  if (policy !== 'Merge' && policy !== 'Strict') {
    throw new InvalidArgumentError(`supplementalGroupsPolicy ${String(policy)} is not supported (Merge or Strict)`);
  }
  // Merge: the groups /etc/group lists the user in, as login(1) would give them.
  if (policy === 'Merge' && username !== undefined) {
    for (const g of (await etc.groups()) ?? []) {
      if (g.name !== username && g.members.includes(username) && g.gid <= MAX_ID) gids.add(g.gid);
    }
  }
  for (const text of sc?.supplementalGroups ?? []) {
    const g = numericId(String(text), 'supplementalGroups: gid');
    if (g === undefined) throw new InvalidArgumentError(`supplementalGroups: "${text}" is not a numeric gid`);
    gids.add(g);
  }
  return { uid, gid, additionalGids: [...gids].sort((a, b) => a - b) };
}
