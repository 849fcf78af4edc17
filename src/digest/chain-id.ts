// OCI chain IDs: the identity of a stack of layers, so two images sharing a base share the
// base's unpacked snapshots. chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
import { digestHex, sha256Digest } from './digest.js';

export function chainIdOf(parentChainId: string | undefined, diffId: string): string {
  digestHex(diffId);
  if (parentChainId === undefined) return diffId;
  digestHex(parentChainId);
  return sha256Digest(`${parentChainId} ${diffId}`);
}

/** Chain IDs of every prefix of `diffIds` (bottom layer first); the last is the image's. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(chainIdOf(out[out.length - 1], d));
  return out;
}

export function chainId(diffIds: readonly string[]): string | undefined {
  const all = chainIds(diffIds);
  return all[all.length - 1];
}
