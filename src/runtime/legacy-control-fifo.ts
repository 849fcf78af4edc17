// Commands to a protocol-1 monitor (started by crib before the control socket; still running on
// an upgraded node): one line into its control fifo. O_NONBLOCK makes the open fail with ENXIO
// instead of hanging when no monitor holds the fifo open.
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';

export async function writeLegacyControl(path: string, line: string): Promise<void> {
  const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  try {
    await fh.write(`${line}\n`);
  } finally {
    await fh.close();
  }
}
