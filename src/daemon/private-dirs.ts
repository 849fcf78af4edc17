// Which of crib's directories are private, and bringing an install up to that at start-up.
//
// The root and state dirs hold image layers (setuid-root binaries, files with capabilities,
// device nodes, world-writable /tmp dirs), containers' rootfs mounts and writable layers,
// pods' /dev/shm tmpfs, attach sockets and control fifos. A host user who can traverse to any
// of them can run a setuid binary from a layer as root, read or write a container's files, or
// plant files in a pod's shm (containerd's CVE-2021-41103). Names are no secret (snapshot dirs
// are numbered, ids show in `ps` and in every /proc/*/mountinfo), so only modes protect them:
//
//   <root>, <state> and every directory crib makes in them   0700
//   <state> when the CRI socket is in it and grpc.socket_group is set
//                                                              0710, group socket_group, so
//                                                              the group reaches the socket
//                                                              and nothing else (every
//                                                              directory below is 0700)
//
// Why not 0710 for a mapped root (as containerd does for bundles with user namespaces): there
// are no user namespaces yet. Overlay reads lower dirs with the mounter's credentials, so layer
// dirs can stay 0700 even then; only the path to a container's rootfs mount would need a
// group, and crib-runtime can instead open the rootfs before it enters the user namespace.
//
// Installs made before this rule have 0711 and 0755 dirs. Start-up tightens them (see
// store/private-dir.ts: bits are only taken away) and logs each at warn.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import type { Logger } from '../log.js';
import { tightenDir, type DirAccess, type DirChange } from '../store/private-dir.js';

export const PRIVATE: DirAccess = { mode: 0o700 };

/**
 * Who may enter the state dir: the owner only, or also `socketGid` when the CRI socket lives
 * directly in it (the group needs search permission on the socket's directory to connect).
 */
export function stateDirAccess(state: string, socketPath: string | undefined, socketGid: number | undefined): DirAccess {
  const inState = socketPath !== undefined && join(socketPath, '..') === join(state);
  return inState && socketGid !== undefined ? { mode: 0o710, gid: socketGid } : PRIVATE;
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return []; // nothing below to tighten
    throw err;
  }
}

/**
 * Every directory crib itself makes under root and state, as laid out today and by earlier
 * versions. Content is never walked: a snapshot's fs/, a bundle's rootfs/ mount, a pod's shm/
 * and pinned ns/ keep the modes their contents need.
 */
async function ownedDirs(root: string, state: string): Promise<string[]> {
  const out: string[] = [];
  // Each top-level entry is one store (snapshots, content, images, containers, pods, network,
  // tmp, ...) or one runtime's state (runtime, runtime-<handler>, containers, pods).
  const rootStores = await subdirs(root);
  const stateStores = await subdirs(state);
  out.push(...rootStores, ...stateStores);
  // Committed layers (numbered), unpacks in progress (tmp-*) and active snapshots.
  out.push(...(await subdirs(join(root, 'snapshots'))), ...(await subdirs(join(root, 'snapshots', 'active'))));
  out.push(...(await subdirs(join(root, 'content'))));
  for (const c of await subdirs(join(state, 'containers'))) out.push(c, join(c, 'bundle'));
  for (const p of await subdirs(join(state, 'pods'))) out.push(p, join(p, 'files'));
  // A state dir inside root keeps its own access (it may be 0710 for the socket group).
  return [...new Set(out)].filter((d) => d !== join(state) && d !== join(root));
}

/**
 * Tighten root, state and every directory crib owns in them; returns what changed. Call once
 * at start-up, after both exist.
 */
export async function tightenInstall(opts: { root: string; state: string; stateAccess: DirAccess; log: Logger }): Promise<DirChange[]> {
  const changes: DirChange[] = [];
  const note = (c: DirChange | undefined): void => {
    if (!c) return;
    changes.push(c);
    opts.log.warn({ path: c.path, from: c.from, to: c.to, ...(c.owner ? { owner: c.owner } : {}) },
      'tightened a directory host users could reach');
  };
  note(await tightenDir(opts.root, PRIVATE, true));
  note(await tightenDir(opts.state, opts.stateAccess, true));
  for (const dir of await ownedDirs(opts.root, opts.state)) note(await tightenDir(dir, PRIVATE));
  return changes;
}
