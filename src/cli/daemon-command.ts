// `crib daemon`: runs the CRI server until SIGTERM/SIGINT. Loaded only for this verb, so the
// daemon's process holds none of the client verbs' modules (and they none of the daemon's).
import type { CribConfig } from '../config/config.js';
import { Daemon } from '../daemon/daemon.js';
import { log } from '../log.js';
import { daemonConfig, type DaemonOptions } from './daemon-config.js';

export type { DaemonOptions };

/** Runs the daemon with `config`, or the config `values` name (cli/daemon-config.ts). */
export async function runDaemon(values: DaemonOptions, config?: CribConfig): Promise<void> {
  const daemon = new Daemon(config ?? (await daemonConfig(values)));
  // The handlers come before start: recovering a busy node takes a while, and a SIGTERM that
  // arrives meanwhile (systemd, a test, an operator's ^C) must end in a clean stop once start
  // has settled, not in the default action that kills the daemon between two writes.
  const started = daemon.start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    started.then(
      () => daemon.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          process.exit(1);
        },
      ),
      // A start that failed has already cleaned up after itself; the caller reports why.
      () => undefined,
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await started;
}
