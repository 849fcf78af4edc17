// One forwarded connection into a pod: `crib-pinns port-forward <netns> <port>` joins the pod's
// network namespace, connects to localhost:<port> and relays its stdio to that connection, so
// the daemon never enters a namespace itself (see native/pinns/port-forward.c). The client's
// end of input half-closes the pod connection; the pod's end of output ends the client stream.
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { log } from '../../log.js';
import { nativeBinaries } from '../../native-paths.js';

/** Our own network namespace, for host-network pods (crib-pinns resolves it as itself). */
export const HOST_NETNS = '/proc/self/ns/net';

/**
 * Relays `data` (client bytes in, pod bytes out) to `port` in the network namespace pinned at
 * `netnsPath`. Resolves with undefined on a clean end, or the reason it failed (for the error
 * stream). Destroying `data` (the client went away) kills the relay.
 */
export function relayPort(netnsPath: string, port: number, data: Duplex): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(nativeBinaries.pinns, ['port-forward', netnsPath, String(port)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    child.stdin!.on('error', () => undefined);
    child.stdout!.on('error', () => undefined);
    data.on('error', () => undefined);
    data.pipe(child.stdin!);
    child.stdout!.pipe(data);
    const onGone = (): void => {
      // A stream that closed after both directions finished is a clean end: the relay has sent
      // everything and is exiting on its own (killing it then would report a spurious error).
      // Anything else means the client went away: the relay goes too.
      const clean = data.readableEnded && data.writableFinished;
      if (!clean && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    data.once('close', onGone);
    child.once('error', (err) => {
      data.off('close', onGone);
      resolve(`cannot start the port relay: ${err.message}`);
    });
    child.once('close', (code, signal) => {
      data.off('close', onGone);
      data.unpipe(child.stdin!);
      if (code === 0) {
        resolve(undefined);
        return;
      }
      const why = stderr.trim().replace(/^crib-pinns: (port-forward: )?/, '') || `relay ended by ${signal ?? `exit ${code}`}`;
      log.debug({ port, err: why }, 'port-forward relay failed');
      resolve(why);
    });
  });
}
