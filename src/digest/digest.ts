// Content digests as the OCI image spec writes them ("sha256:<64 hex>"). Blobs, image ids, layer
// diffIDs and snapshot chain ids are all named this way, so the image and snapshot domains share
// these helpers from here rather than from each other.
import { createHash } from 'node:crypto';
import { DataLossError, InvalidArgumentError } from '../errors.js';

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/** The hex part of a sha256 digest; InvalidArgumentError for anything else. */
export function digestHex(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) {
    throw new InvalidArgumentError(
      `digest ${JSON.stringify(digest)} is not of the form sha256:<64 lowercase hex digits>`);
  }
  return m[1]!;
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** DataLossError unless `bytes` hash to `digest`. */
export function verifyDigest(bytes: Buffer, digest: string, what: string): void {
  const actual = sha256Digest(bytes);
  if (actual !== digest) {
    throw new DataLossError(`${what}: content does not match its digest (expected ${digest}, got ${actual})`);
  }
}
