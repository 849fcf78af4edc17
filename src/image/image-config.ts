// The parts of an OCI image config (application/vnd.oci.image.config.v1+json and Docker's
// equivalent) that crib reads, with validation: an image whose config lies about its layers
// must fail the pull, not fail a container later.
import { DataLossError } from '../errors.js';

export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    ExposedPorts?: Record<string, unknown>;
    Volumes?: Record<string, unknown>;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
  created?: string;
}

export function parseImageConfig(bytes: Buffer, digest: string, layerCount: number): ImageConfig {
  let parsed: ImageConfig;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new DataLossError(`image config ${digest} is not valid JSON: ${(err as Error).message}`);
  }
  const diffIds = parsed?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(d))) {
    throw new DataLossError(`image config ${digest} has no valid rootfs.diff_ids`);
  }
  if (diffIds.length !== layerCount) {
    throw new DataLossError(
      `image config ${digest} lists ${diffIds.length} layer diff_ids but the manifest has ${layerCount} layers`,
    );
  }
  return parsed;
}

