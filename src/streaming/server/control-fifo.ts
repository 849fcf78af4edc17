// Writes one command to a monitor's control fifo (see native/monitor/ctl.c). O_NONBLOCK makes
// the open fail with ENXIO instead of hanging when no monitor holds the fifo open.
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';

export async function writeControl(path: string, line: string): Promise<void> {
  const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  try {
    await fh.write(`${line}\n`);
  } finally {
    await fh.close();
  }
}
