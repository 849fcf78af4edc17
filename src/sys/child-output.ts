// Reading what a child process leaves: its output to the pipes' end and its exit code. Output is
// read to its end (the pipes' EOF, Node's 'close'), never only until the process exits: Node
// reaps every exited child whenever any SIGCHLD arrives, so under load a helper's 'exit' can fire
// before the output it wrote has been read from its pipe.
import type { ChildProcess } from 'node:child_process';
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
 * The first line a stream yields, without its newline (what it yielded, "" for nothing, if it
 * ends before a newline); the stream is destroyed once the line is read (a detached monitor's
 * sync pipe: one line, then nothing).
 */
export function readFirstLine(stream: Readable | null | undefined): Promise<string> {
  return new Promise((resolve) => {
    if (!stream) {
      resolve('');
      return;
    }
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        stream.destroy();
        resolve(buf.slice(0, nl));
      }
    });
    stream.once('end', () => resolve(buf));
    stream.once('close', () => resolve(buf));
    stream.once('error', () => resolve(buf));
  });
}

/** The exit code of a child (null when killed by a signal); a spawn error is a failed exit. */
export function exitCode(child: ChildProcess): Promise<{ code: number | null; error?: Error }> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve({ code }));
    child.once('error', (error) => resolve({ code: null, error }));
  });
}
