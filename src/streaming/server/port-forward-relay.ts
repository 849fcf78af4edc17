// One forwarded connection into a pod. `crib-pinns port-forward <netns> <port>` joins the pod's
// network namespace, connects to localhost:<port> and hands the connected socket back over a
// unix socket (SCM_RIGHTS), so the daemon never enters a namespace itself (see
// native/pinns/port-forward.c) yet moves the bytes without a process in between. The client's
// end of input half-closes the pod connection; the pod's end of output ends the client stream.
import { closeSync } from 'node:fs';
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import { log } from '../../log.js';
import { nativeBinaries } from '../../native-paths.js';
import { readBoundedToEnd } from '../../sys/child-output.js';
import { fdHandoffPair, receiveFd } from '../../sys/libc.js';
import { spawnWithoutFork } from '../../sys/posix-spawn.js';
import { signalName } from '../../sys/signal-name.js';

/** Our own network namespace, for host-network pods (crib-pinns resolves it as itself). */
export const HOST_NETNS = '/proc/self/ns/net';

/**
 * Once the pod has closed its side, how long the client may go on sending before the connection
 * is closed anyway (containerd allows one second), so a client that never half-closes does not
 * hold it open forever.
 */
const CLIENT_GRACE_MS = 1000;

/**
 * Relays `data` (client bytes in, pod bytes out) to `port` in the network namespace pinned at
 * `netnsPath`. Resolves with undefined on a clean end, or the reason it failed (for the error
 * stream). Destroying `data` (the client went away) closes the pod connection; that is a clean
 * end too, as in kubelet's and containerd's forwarders.
 */
export async function relayPort(netnsPath: string, port: number, data: Duplex): Promise<string | undefined> {
  data.on('error', () => undefined);
  let fd: number;
  try {
    fd = await connectInPod(netnsPath, port);
  } catch (err) {
    const why = (err as Error).message;
    log.debug({ port, err: why }, 'port-forward connect failed');
    return why;
  }
  if (data.destroyed) {
    closeSync(fd); // the client went away while we connected: nobody to report to
    return undefined;
  }
  return pipeConnection(fd, data);
}

/** What of the port connector's complaints is kept (a line or two; a flood is cut). */
const CONNECTOR_STDERR_KEEP = 4096;

/**
 * Runs crib-pinns to connect inside the namespace; resolves with the connected socket's fd.
 * Started with posix_spawn (sys/posix-spawn.ts) like every helper on a call path: one per
 * forwarded connection, and a fork of the daemon for each would copy its page tables.
 */
async function connectInPod(netnsPath: string, port: number): Promise<number> {
  const [ours, theirs] = fdHandoffPair();
  let p;
  try {
    p = await spawnWithoutFork(nativeBinaries.pinns, ['port-forward', netnsPath, String(port)], { stdoutToNull: true, fd3: theirs });
  } catch (err) {
    closeSync(ours);
    throw new Error(`cannot start the port connector: ${(err as Error).message}`);
  } finally {
    // The child holds its own copy (or never started): ours would keep the channel open.
    closeSync(theirs);
  }
  try {
    const [stderr, { code, signal }] = await Promise.all([readBoundedToEnd(p.stderr, CONNECTOR_STDERR_KEEP), p.exited]);
    if (code !== 0) {
      const ended = signal !== null ? signalName(signal) : `exit ${code}`;
      throw new Error(stderr.trim().replace(/^crib-pinns: (port-forward: )?/, '') || `the port connector ended by ${ended}`);
    }
    const fd = receiveFd(ours);
    if (fd === undefined) throw new Error('the port connector exited without handing over a connection');
    return fd;
  } finally {
    closeSync(ours);
  }
}

interface OnReadOption {
  onread: OnReadOpts;
}

/** A client stream that can send bytes without copying them (SpdyStream does). */
interface BorrowingSink extends Duplex {
  writeBorrowed(chunk: Buffer, release: () => void): boolean;
  whenWritable(cb: (err?: Error | null) => void): void;
}

function isBorrowingSink(d: Duplex): d is BorrowingSink {
  return typeof (d as Partial<BorrowingSink>).writeBorrowed === 'function';
}

/**
 * Reads from the pod go into a handful of reused buffers. Allocating a fresh buffer per read
 * (what a plain pipe does) left the garbage collector a tenth of the daemon's time on a bulk
 * download. A connection starts with Node's usual 64 KiB; once a read fills its buffer (bulk
 * data), new buffers are 256 KiB: fewer wakeups and fewer, larger writes to the client, while
 * the many short request/response connections never hold more than they need.
 */
const FIRST_READ_SIZE = 64 * 1024;
const BULK_READ_SIZE = 256 * 1024;

/**
 * Wraps the connected fd and moves bytes both ways until both directions are done. Each
 * direction ends on its own: the client's end half-closes the pod connection (SHUT_WR), the
 * pod's end ends `data`, so request/response protocols that rely on half-close work.
 */
function pipeConnection(fd: number, data: Duplex): Promise<string | undefined> {
  return new Promise((resolve) => {
    let failure: string | undefined;
    let grace: NodeJS.Timeout | undefined;
    let pod: Socket;
    if (isBorrowingSink(data)) {
      // Pod to client without copies: a buffer goes back to the pool once the client's socket
      // has handed its bytes to the kernel; reading pauses while the client's side is full.
      const free: Buffer[] = [];
      let readSize = FIRST_READ_SIZE;
      const onread = {
        buffer: () => free.pop() ?? Buffer.allocUnsafeSlow(readSize),
        callback: (n: number, view: Uint8Array): boolean => {
          const buf = view as Buffer; // the very buffer `buffer` returned
          if (n === buf.length && readSize < BULK_READ_SIZE) {
            readSize = BULK_READ_SIZE;
            free.length = 0; // small buffers are not reused once reads have gone big
          }
          let more: boolean;
          try {
            // Back to the pool once sent, unless reads have grown past its size meanwhile.
            more = data.writeBorrowed(buf.subarray(0, n), () => {
              if (buf.length === readSize) free.push(buf);
            });
          } catch (err) {
            // The client's stream is gone: the same as the client going away (see onGone).
            log.debug({ err: (err as Error).message }, 'port-forward: client stream closed while the pod was sending');
            pod.destroy();
            return false;
          }
          if (more) return true;
          data.whenWritable((err) => {
            if (!err && !pod.destroyed) pod.resume();
          });
          return false;
        },
      };
      // onread is honoured by the Socket constructor itself (net.connect passes it through);
      // @types/node lists it for connect options only.
      const opts: SocketConstructorOpts & OnReadOption = { fd, readable: true, writable: true, allowHalfOpen: true, onread };
      pod = new Socket(opts);
      pod.on('end', () => data.end());
    } else {
      pod = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
      pod.pipe(data);
    }
    data.pipe(pod);
    pod.on('end', () => {
      // The pod said all it will say: the client gets a short grace to finish sending.
      if (!data.readableEnded) grace = setTimeout(() => pod.destroy(), CLIENT_GRACE_MS);
    });
    pod.on('error', (err: NodeJS.ErrnoException) => {
      // Writing to a pod that already closed its side just ends that direction (EPIPE, or a
      // reset that answers the late bytes): everything it sent has been delivered.
      if (pod.readableEnded && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) return;
      failure ??= err.code === 'ECONNRESET' ? `read from the pod's port: ${err.message}` : err.message;
    });
    const onGone = (): void => {
      // A stream that closed before both directions finished means the client went away (or
      // reset the stream, which client-go does as soon as it has read the pod's end of output):
      // the pod connection goes too. That is not a forwarding failure to report: a message on
      // the error stream makes client-go drop the whole port-forward session.
      if (!(data.readableEnded && data.writableFinished)) {
        log.debug({ fd }, 'port-forward: the client closed the stream; closing the pod connection');
        pod.destroy();
      }
    };
    data.once('close', onGone);
    pod.once('close', () => {
      clearTimeout(grace);
      data.off('close', onGone);
      data.unpipe(pod);
      if (failure) log.debug({ err: failure }, 'port-forward connection failed');
      resolve(failure);
    });
  });
}
