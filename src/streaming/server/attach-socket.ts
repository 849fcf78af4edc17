// Pumping a crib-monitor attach socket (see native/monitor/attach.c; the runtime port opens it):
// output arrives as frames [stream id (1 stdout, 2 stderr)][0 0 0][length u32 BE][payload];
// input is raw bytes, and shutting down our write side ends our input (with --stdin-once, the
// container's stdin).
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';

const FRAME_HEADER = 8;
const STDOUT_ID = 1;
const STDERR_ID = 2;

/** Default for how long output may wait on a client that reads nothing before it is cut off. */
export const DEFAULT_STALL_TIMEOUT_MS = 5 * 60_000;

/**
 * Splits the attach socket's frames onto stdout/stderr (either may be absent: its frames are
 * dropped). Output is paced by the slower destination: the socket is paused while a write is
 * pending, so a slow client makes the monitor queue (and, past its limit, drop) this attacher
 * only. Resolves 'ended' when the socket ends (the process exited and its output was drained;
 * our side is then ended too, so the monitor can close),
 * or 'stalled' when a destination accepted nothing for `stallTimeoutMs` (the socket is then
 * destroyed: a client that stopped reading must not hold the session forever).
 */
export function pumpAttachOutput(
  sock: Socket,
  stdout: Writable | undefined,
  stderr: Writable | undefined,
  stallTimeoutMs = DEFAULT_STALL_TIMEOUT_MS,
): Promise<'ended' | 'stalled'> {
  return new Promise((resolve) => {
    let pending: Buffer = Buffer.alloc(0);
    let waiting = 0;
    let stallTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (how: 'ended' | 'stalled' = 'ended'): void => {
      if (settled) return;
      settled = true;
      clearTimeout(stallTimer);
      sock.off('data', onData);
      if (how === 'stalled') sock.destroy();
      resolve(how);
    };
    const write = (dest: Writable | undefined, payload: Buffer): void => {
      if (!dest || dest.destroyed || dest.writableEnded) return;
      if (!dest.write(payload)) {
        if (waiting++ === 0) stallTimer = setTimeout(() => settle('stalled'), stallTimeoutMs);
        sock.pause();
        const resume = (): void => {
          dest.off('drain', resume);
          dest.off('close', resume);
          if (--waiting === 0) {
            clearTimeout(stallTimer);
            sock.resume();
          }
        };
        dest.on('drain', resume);
        dest.on('close', resume);
      }
    };
    const onData = (chunk: Buffer): void => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let off = 0;
      while (pending.length - off >= FRAME_HEADER) {
        const id = pending[off]!;
        const len = pending.readUInt32BE(off + 4);
        if (pending.length - off - FRAME_HEADER < len) break;
        const payload = pending.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len);
        if (id === STDOUT_ID) write(stdout, payload);
        else if (id === STDERR_ID) write(stderr, payload);
        off += FRAME_HEADER + len;
      }
      pending = off === pending.length ? Buffer.alloc(0) : pending.subarray(off);
    };
    const ended = (): void => {
      // The monitor ends its output, then waits for us to close our side before it closes:
      // answer at once (a monitor kept waiting holds back the exec's exit file).
      if (!sock.writableEnded) sock.end();
      settle();
    };
    sock.on('data', onData);
    sock.once('end', ended);
    sock.once('close', () => settle());
    sock.on('error', () => undefined);
    // An output that ended before we got here (an exec that printed nothing and exited before
    // its monitor's report reached us): a socket with nothing buffered emits 'end' at once,
    // listened to or not, and never again.
    if (sock.readableEnded) ended();
    else if (sock.destroyed) settle();
  });
}

/**
 * Forwards client input to the attach socket; the client's end of input half-closes the
 * socket's write side (that is how the monitor learns this attacher is done sending).
 */
export function pumpAttachInput(stdin: Readable, sock: Socket): void {
  stdin.on('data', (chunk: Buffer) => {
    if (sock.destroyed || sock.writableEnded) return;
    if (!sock.write(chunk)) {
      stdin.pause();
      sock.once('drain', () => stdin.resume());
    }
  });
  stdin.once('end', () => {
    if (!sock.destroyed && !sock.writableEnded) sock.end();
  });
  stdin.on('error', () => undefined);
}
