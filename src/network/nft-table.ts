// crib's own nftables table (family ip, default name "crib"; a twin in family ip6 for a
// dual-stack network): outbound NAT for the pod CIDR and the entry points for host-port DNAT. Owning a whole table means crib never edits rules that
// belong to anyone else, and uninstalling is deleting the table.
//
//   postrouting (nat, srcnat): pods → outside         masquerade
//                              127.0.0.0/8 → pods     masquerade (host's curl 127.0.0.1:hostPort;
//                                                     ip only: ::1 never leaves lo, so ::1 is not
//                                                     DNATed at all and gets a plain refusal)
//                              pods → pods after DNAT masquerade (hairpin: a pod to its own hostPort)
//   prerouting  (nat, dstnat): to a local address → jump hostports
//   output      (nat, -100)  : to a local address → jump hostports
//   hostports                : one `jump hp-<pod>` per pod with port mappings (see host-ports.ts)
import { InvalidArgumentError } from '../errors.js';
import { CommandError, runCommand } from '../sys/command.js';

const TABLE_RE = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

export function checkTableName(name: string): void {
  if (!TABLE_RE.test(name)) throw new InvalidArgumentError(`nftables table name "${name}" is not valid`);
}

export const isMissingNftObject = (err: unknown): boolean =>
  err instanceof CommandError && /No such file or directory/.test(err.stderr);

export type NftFamily = 'ip' | 'ip6';

export function nft(script: string): Promise<string> {
  return runCommand('nft', ['-f', '-'], { input: script });
}

/** Create or refresh the table and its base chains; host-port chains are left untouched. */
export async function ensureNftTable(table: string, family: NftFamily, podCidr: string): Promise<void> {
  checkTableName(table);
  const t = `${family} ${table}`;
  const f = family;
  // One transaction: the flushed base chains are never seen half-filled.
  await nft(`
add table ${t}
add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }
add chain ${t} output { type nat hook output priority -100; policy accept; }
add chain ${t} hostports
flush chain ${t} postrouting
flush chain ${t} prerouting
flush chain ${t} output
add rule ${t} postrouting ${f} saddr ${podCidr} ${f} daddr != ${podCidr} masquerade
${family === 'ip' ? `add rule ${t} postrouting ip saddr 127.0.0.0/8 ip daddr ${podCidr} masquerade` : ''}
add rule ${t} postrouting ${f} saddr ${podCidr} ${f} daddr ${podCidr} ct status dnat masquerade
add rule ${t} prerouting fib daddr type local jump hostports
add rule ${t} output fib daddr type local ${family === 'ip6' ? 'ip6 daddr != ::1 ' : ''}jump hostports
`);
}

export async function deleteNftTable(table: string, family: NftFamily = 'ip'): Promise<boolean> {
  checkTableName(table);
  try {
    await nft(`delete table ${family} ${table}\n`);
    return true;
  } catch (err) {
    if (isMissingNftObject(err)) return false;
    throw err;
  }
}

/** `nft list table <family> <table>` text, or undefined when the table does not exist. */
export async function listNftTable(table: string, family: NftFamily = 'ip'): Promise<string | undefined> {
  checkTableName(table);
  try {
    return await runCommand('nft', ['list', 'table', family, table]);
  } catch (err) {
    if (isMissingNftObject(err)) return undefined;
    throw err;
  }
}
