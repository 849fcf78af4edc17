// Reading a small response body (a manifest, a token, an error document) whole, with two bounds
// a hostile or broken server cannot stretch: a byte count, past which the body is abandoned, and
// a deadline for the whole body, so a server dripping one byte at a time (each byte resetting
// the HTTP layer's inactivity timer) cannot hold a pull forever.
import type { Readable } from 'node:stream';
import { CribError, DeadlineExceededError, UnavailableError } from '../../errors.js';

export interface BoundedReadOptions {
  /** Most bytes accepted. */
  limit: number;
  /** The whole body must arrive within this many milliseconds. */
  deadlineMs: number;
  /** What is being read and from where, for messages: `manifest of image "x" from host`. */
  what: string;
  /** The error for a body over `limit`; undefined to keep the first `limit` bytes instead. */
  tooLarge?: () => CribError;
}

/** The body's bytes; throws tooLarge() past the limit, DeadlineExceeded past the deadline. */
export async function readBoundedBody(body: Readable, opts: BoundedReadOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    body.destroy();
  }, opts.deadlineMs);
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      if (size + b.length > opts.limit) {
        if (opts.tooLarge) throw opts.tooLarge();
        chunks.push(b.subarray(0, opts.limit - size));
        size = opts.limit;
        break;
      }
      size += b.length;
      chunks.push(b);
    }
  } catch (err) {
    if (err instanceof CribError) throw err;
    if (!timedOut) throw new UnavailableError(`reading ${opts.what} failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(timer);
    // Whatever is left unread is not wanted: close rather than drain a body that may not end.
    if (!body.readableEnded) body.destroy();
  }
  if (timedOut) {
    throw new DeadlineExceededError(
      `reading ${opts.what} took longer than ${Math.round(opts.deadlineMs / 1000)}s (${size} bytes arrived); ` +
      'the registry is sending too slowly (image.pull_progress_timeout bounds it)');
  }
  return Buffer.concat(chunks);
}
