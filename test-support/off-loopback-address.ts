// A non-loopback address on this machine, for tests that need "a host on the network" without a
// network: a veth pair (this kernel has no dummy driver) whose one end holds a 10.254.x.y/32
// address. Traffic to it is delivered locally, but every client sees an address that is neither
// loopback nor link-local. remove() deletes the pair (and with it the address).
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

// A test process that dies without its afterAll must not leave the pair behind.
const live = new Set<string>();
let exitHook = false;
function removeOnExit(link: string): void {
  live.add(link);
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const l of live) try { execFileSync('ip', ['link', 'del', l], { stdio: 'ignore' }); } catch { /* gone */ }
  });
}

export interface OffLoopbackAddress {
  address: string;
  link: string;
  remove(): Promise<void>;
}

export async function addOffLoopbackAddress(): Promise<OffLoopbackAddress> {
  const r = randomBytes(3);
  const link = `crbhr${r.toString('hex')}`;
  const address = `10.254.${1 + (r[0]! % 253)}.${1 + (r[1]! % 253)}`;
  await run('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`]);
  removeOnExit(link);
  try {
    await run('ip', ['addr', 'add', `${address}/32`, 'dev', link]);
    await run('ip', ['link', 'set', link, 'up']);
    await run('ip', ['link', 'set', `${link}p`, 'up']);
  } catch (err) {
    await run('ip', ['link', 'del', link]).catch(() => undefined);
    throw err;
  }
  return {
    address, link,
    remove: async () => {
      live.delete(link);
      await run('ip', ['link', 'del', link]).catch(() => undefined);
    },
  };
}
