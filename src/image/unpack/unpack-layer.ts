// Layer blob file → directory, on the process's unpack pool (unpack-pool.ts): decompression, the
// diffID hash and the file writes run on a worker thread (extract-layer.ts does the work). Pulls
// stream a layer into the pool as it downloads instead (image-ingest.ts); this is for a blob
// already on disk.
import type { ByteBudget } from '../limits.js';
import { sharedUnpackPool, type UnpackPool, type UnpackResult } from './unpack-pool.js';

export type { UnpackResult } from './unpack-pool.js';

export interface UnpackOptions {
  signal?: AbortSignal;
  /**
   * The blob's digest as verified by the content store. For an uncompressed layer it is the
   * diffID, and the tar is not hashed again.
   */
  blobDigest?: string;
  /** The layer as messages name it (default: the blob's path). */
  what?: string;
  /** Most uncompressed tar bytes accepted (image.max_layer_size). */
  maxBytes?: number;
  /** Most tar entries accepted (image.max_layer_entries). */
  maxEntries?: number;
  /** The image's running total of uncompressed bytes (image.max_image_size). */
  budget?: ByteBudget;
  /** Bound on the writer's directory bookkeeping (default: LayerWriter's); tests lower it. */
  maxBookkeepingBytes?: number;
  /** The pool to run on (default: the process's shared one). */
  pool?: UnpackPool;
}

export async function unpackLayer(blobPath: string, targetDir: string, opts: UnpackOptions = {}):
  Promise<UnpackResult> {
  const { pool, ...rest } = opts;
  return (pool ?? sharedUnpackPool()).unpack(targetDir, { file: blobPath }, {
    ...rest,
    what: opts.what ?? `layer ${blobPath}`,
  }).result;
}
