// Reading what a child process leaves on its pipes. Output is read to its end (the pipes' EOF,
// 'close'), never only until the process exits: a process can be reaped before the output it
// wrote has been read from its pipe.
import type { Readable } from 'node:stream';

/** Everything a stream yields until its end, as text. */
export function readToEnd(stream: Readable | null | undefined): Promise<string> {
  return new Promise((resolve) => {
    if (!stream) {
      resolve('');
      return;
    }
    const chunks: Buffer[] = [];
    const done = (): void => resolve(Buffer.concat(chunks).toString());
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

/**
 * Everything a stream yields until its end, of which only the first `keep` bytes are kept (the
 * rest is read and dropped, so a writer never blocks on a full pipe); when some were dropped, a
 * note saying how many ends the text.
 */
export function readBoundedToEnd(stream: Readable | null | undefined, keep: number): Promise<string> {
  return new Promise((resolve) => {
    if (!stream) {
      resolve('');
      return;
    }
    const chunks: Buffer[] = [];
    let kept = 0;
    let dropped = 0;
    const done = (): void => {
      const text = Buffer.concat(chunks).toString();
      resolve(dropped > 0 ? `${text}… (${dropped} more bytes not kept)` : text);
    };
    stream.on('data', (d: Buffer) => {
      const room = keep - kept;
      if (room > 0) chunks.push(d.length <= room ? d : d.subarray(0, room));
      kept += Math.min(room > 0 ? room : 0, d.length);
      dropped += Math.max(0, d.length - Math.max(room, 0));
    });
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

/** readFirstLine's failure: the stream sent more than its bound without a newline. */
export class LineTooLongError extends Error {}

/**
 * The first line a stream yields, without its newline (what it yielded, "" for nothing, if it
 * ends before a newline); the stream is destroyed once the line is read (a detached monitor's
 * sync pipe: one line, then nothing). A line longer than `maxBytes` (its newline not counted)
 * rejects with LineTooLongError, and the stream is destroyed then too.
 */
export function readFirstLine(stream: Readable | null | undefined, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!stream) {
      resolve('');
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    const text = (): string => Buffer.concat(chunks).toString();
    stream.on('data', (d: Buffer) => {
      const nl = d.indexOf(0x0a);
      const part = nl >= 0 ? d.subarray(0, nl) : d;
      chunks.push(part);
      length += part.length;
      if (length > maxBytes) {
        stream.destroy();
        reject(new LineTooLongError(`its first line passed ${maxBytes} bytes without a newline`));
      } else if (nl >= 0) {
        stream.destroy();
        resolve(text());
      }
    });
    stream.once('end', () => resolve(text()));
    stream.once('close', () => resolve(text()));
    stream.once('error', () => resolve(text()));
  });
}
