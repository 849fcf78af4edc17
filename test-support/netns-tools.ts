// Running commands inside a test's network namespaces from the host (the tests' side only: the
// daemon itself never enters a namespace).
import { execFileSync } from 'node:child_process';

/** Run a command in the network namespace at `netns` (a pinned file or /run/netns/<name>). */
export const inNetns = (netns: string, ...cmd: string[]): string =>
  execFileSync('nsenter', [`--net=${netns}`, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** curl from the host, or from inside a netns (busybox wget crashes in this static build). */
export function curl(url: string, netns?: string): { ok: boolean; body: string } {
  // -g: IPv6 literals in brackets are addresses, not URL globs.
  const cmd = ['curl', '-sS', '-g', '--max-time', '5', url];
  try {
    const body = netns
      ? inNetns(netns, ...cmd)
      : execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true, body };
  } catch (err) {
    return { ok: false, body: String((err as Error).message) };
  }
}
