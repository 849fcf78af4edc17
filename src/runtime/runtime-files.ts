// Where the runtime keeps its files in a container's state dir (the rest of the dir, the bundle,
// belongs to ContainerService). Monitors started by crib before the control socket (protocol 1)
// have a control fifo named `ctl` and no `ctl.sock`: that is how they are told apart.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export const runtimeFiles = (dir: string) => ({
  exitFile: join(dir, 'exit.json'),
  attachSocket: join(dir, 'attach.sock'),
  ctlSocket: join(dir, 'ctl.sock'),
  /** Protocol 1 monitors only. */
  legacyCtlFifo: join(dir, 'ctl'),
});

/** The files of a new streaming exec (or another runtime's ExecSync) in the container's dir `dir`, named by a random tag. */
export function newExecFiles(dir: string) {
  const tag = randomBytes(8).toString('hex');
  return {
    process: join(dir, `exec-${tag}.json`),
    exitFile: join(dir, `exec-${tag}.exit`),
    pidFile: join(dir, `exec-${tag}.pid`),
    attachSocket: join(dir, `exec-${tag}.sock`),
    ctlSocket: join(dir, `exec-${tag}.ctl.sock`),
  };
}
