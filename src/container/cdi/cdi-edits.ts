// Applies resolved CDI devices to a built OCI spec, in request order, each spec's own edits
// once before its first device's: environment (a variable the edits set replaces the
// container's), device nodes (type, numbers and mode read from the host node when the spec
// leaves them out; a cgroup rule allowing exactly the node's permissions), mounts (one at the
// same container path is replaced; parents end up before children), hooks (OCI hooks, which
// every runtime crib drives runs) and additional GIDs.
import { lstat } from 'node:fs/promises';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { major, minor, modeFor } from '../oci-spec/devices.js';
import type { OciDevice, OciMount, OciSpec } from '../oci-spec/oci-types.js';
import type { ResolvedDevice } from './cdi-registry.js';
import type { CdiContainerEdits, CdiDeviceNode } from './cdi-spec.js';

const TYPE_OF = (mode: bigint): OciDevice['type'] | undefined => {
  const fmt = mode & 0o170000n;
  return fmt === 0o020000n ? 'c' : fmt === 0o060000n ? 'b' : fmt === 0o010000n ? 'p' : undefined;
};

/** The OCI device for a CDI device node, with what the spec left out read from the host node. */
async function ociDevice(node: CdiDeviceNode, access: string, where: string, user: { uid: number; gid: number }): Promise<OciDevice> {
  const hostPath = node.hostPath ?? node.path;
  // Fully specified (a type, and a major unless a fifo): the host node is optional, as in CDI.
  const minimal = node.type !== undefined && (node.major !== undefined && node.major !== 0 || node.type === 'p');
  let host: { type: OciDevice['type']; major: number; minor: number; mode: number } | undefined;
  try {
    const st = await lstat(hostPath, { bigint: true });
    const type = TYPE_OF(st.mode);
    if (type === undefined) throw new Error('not a device node');
    host = { type, major: major(st.rdev), minor: minor(st.rdev), mode: Number(st.mode & 0o7777n) };
  } catch (err) {
    if (!minimal) throw new FailedPreconditionError(`${where}: host device ${hostPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let dev: OciDevice;
  if (minimal || !host) {
    dev = { type: node.type!, path: node.path, major: node.major ?? 0, minor: node.minor ?? 0 };
  } else {
    const type = node.type ?? host.type;
    // 'u' (unbuffered) is a character device too.
    if ((type === 'u' ? 'c' : type) !== host.type) {
      throw new InvalidArgumentError(`${where}: type "${type}" but host device ${hostPath} is of type "${host.type}"`);
    }
    dev = { type, path: node.path, major: host.major, minor: host.minor };
  }
  // A mode read from the host is bounded by the access granted, as for CRI devices (devices.ts):
  // the cgroup refuses container root, the mode everyone else. A mode the spec states is its own.
  const mode = node.fileMode ?? (host ? modeFor(host.mode, access) : undefined);
  if (mode !== undefined) dev.fileMode = mode;
  // The container user owns it unless the spec says otherwise (as the CDI library does).
  const uid = node.uid ?? (user.uid > 0 ? user.uid : undefined);
  const gid = node.gid ?? (user.gid > 0 ? user.gid : undefined);
  if (uid !== undefined) dev.uid = uid;
  if (gid !== undefined) dev.gid = gid;
  return dev;
}

function ociMount(m: NonNullable<CdiContainerEdits['mounts']>[number]): OciMount {
  const options = [...(m.options ?? [])];
  const type = m.type || 'bind';
  // A bind given only as a type still needs the option runtimes read (runc, crun and crib-runtime).
  if (type === 'bind' && !options.includes('bind') && !options.includes('rbind')) options.unshift('rbind');
  return { destination: m.containerPath, type, source: m.hostPath, options };
}

const depth = (p: string): number => p.split('/').filter(Boolean).length;

async function applyOne(spec: OciSpec, edits: CdiContainerEdits, where: string): Promise<void> {
  for (const e of edits.env ?? []) {
    const key = e.slice(0, e.indexOf('='));
    const at = spec.process.env.findIndex((x) => x.startsWith(`${key}=`));
    if (at >= 0) spec.process.env[at] = e;
    else spec.process.env.push(e);
  }
  for (const [i, node] of (edits.deviceNodes ?? []).entries()) {
    const access = node.permissions === 'none' ? '' : node.permissions || 'rwm';
    const dev = await ociDevice(node, access, `${where}.deviceNodes[${i}] (${node.path})`, spec.process.user);
    const devices = (spec.linux.devices ??= []);
    const at = devices.findIndex((d) => d.path === dev.path);
    if (at >= 0) devices.splice(at, 1);
    devices.push(dev);
    if (dev.type !== 'p') {
      spec.linux.resources.devices.push({ allow: true, type: dev.type === 'b' ? 'b' : 'c', major: dev.major, minor: dev.minor, access });
    }
  }
  if (edits.mounts?.length) {
    for (const m of edits.mounts) {
      spec.mounts = spec.mounts.filter((x) => x.destination !== m.containerPath);
      spec.mounts.push(ociMount(m));
    }
    // Stable: mounts of one depth keep their order; a parent is mounted before what is under it.
    spec.mounts = spec.mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map((x) => x.m);
  }
  for (const h of edits.hooks ?? []) {
    const hooks = (spec.hooks ??= {});
    const list = (hooks[h.hookName] ??= []);
    list.push({ path: h.path, ...(h.args ? { args: h.args } : {}), ...(h.env ? { env: h.env } : {}), ...(h.timeout ? { timeout: h.timeout } : {}) });
  }
  for (const gid of edits.additionalGids ?? []) {
    if (gid === 0) continue; // CDI: 0 is ignored
    const gids = (spec.process.user.additionalGids ??= []);
    if (!gids.includes(gid)) gids.push(gid);
  }
}

export async function applyCdiDevices(spec: OciSpec, devices: readonly ResolvedDevice[]): Promise<void> {
  for (const d of devices) {
    if (d.specEdits) await applyOne(spec, d.specEdits, `CDI spec ${d.specPath} containerEdits`);
    await applyOne(spec, d.edits, `CDI device "${d.name}" (${d.specPath})`);
  }
}
