// The netlink floor of a pod (issue 14: RunPodSandbox within 3x of it, measured in the same run):
// what any runtime built like crib must at least pay per pod, timed from the caller's side. One
// crib-pinns process that pins a network, IPC and UTS namespace and attaches the network one to a
// bridge of its own over rtnetlink (veth with its peer created in the namespace, hairpin,
// addresses, routes), spawned from Node as the daemon spawns it; and, apart, deleting that veth
// (what teardown leaves to the background). Nothing of the daemon (records, IPAM, pod files) is
// in it. The bridge, namespaces and veths are removed by close().
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nativeBinaries } from '../src/native-paths.js';

const run = promisify(execFile);

export interface NetlinkFloor {
  /** One pod's namespaces + network; returns the ms it took, and the ms of deleting its veth. */
  sample(): Promise<{ attach: number; detach: number }>;
  close(): Promise<void>;
}

export async function openNetlinkFloor(bridge: string, subnet24: string): Promise<NetlinkFloor> {
  const dir = await mkdtemp(join(tmpdir(), 'crib-floor-'));
  const prefix = subnet24.replace(/\.0\/24$/, '');
  await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${prefix}.1/24`, 'dev', bridge]);
  await run('ip', ['link', 'set', bridge, 'up']);
  let n = 0;
  const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
  return {
    async sample() {
      const i = n++;
      const pod = join(dir, `p${i}`);
      const veth = `crflr${i % 100000}`;
      const t0 = process.hrtime.bigint();
      await run(nativeBinaries.pinns, ['--dir', pod, '--net', '--ipc', '--uts', '--hostname', `floor${i}`,
        '--bridge', bridge, '--host-if', veth, '--mtu', '1500', '--addr', `${prefix}.${2 + (i % 250)}/24`, '--gw', `${prefix}.1`]);
      const attach = ms(t0);
      const t1 = process.hrtime.bigint();
      await run(nativeBinaries.pinns, ['pod-net', 'detach', '--host-if', veth]);
      const detach = ms(t1);
      await run(nativeBinaries.pinns, ['--remove', pod]);
      return { attach, detach };
    },
    async close() {
      await run('ip', ['link', 'del', bridge]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
