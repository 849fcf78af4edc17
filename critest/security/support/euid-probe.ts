// The euid probe (euid-probe.c), compiled static for the host and busybox images alike, and the
// file capability that makes it root without a setuid bit.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./euid-probe.c', import.meta.url));

/** Compile the probe into dir; returns the binary. */
export async function buildEuidProbe(dir: string): Promise<Buffer> {
  const out = join(dir, 'euid-probe');
  await run('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', out, SOURCE]);
  return readFile(out);
}

/**
 * security.capability for cap_setuid=ep (what `setcap cap_setuid+ep` writes): struct
 * vfs_cap_data, revision 2 with the effective flag, permitted = 1 << CAP_SETUID (7).
 */
export function capSetuidEp(): Buffer {
  const VFS_CAP_REVISION_2 = 0x02000000;
  const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;
  const CAP_SETUID = 7;
  const b = Buffer.alloc(20);
  b.writeUInt32LE(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, 0);
  b.writeUInt32LE(1 << CAP_SETUID, 4); // data[0].permitted; inheritable and data[1] stay 0
  return b;
}
