// What the test process itself has open, from the kernel's own table (/proc/self/fd): tests that
// claim nothing is left open check this, not a count the code under test keeps about itself.
import { readdirSync, readlinkSync } from 'node:fs';

/** What this process's descriptors open on `under`, or below it, lead to. */
export function openUnder(under: string): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target === under || target.startsWith(`${under}/`) ? [target] : [];
    } catch {
      return []; // closed meanwhile (readdirSync's own descriptor)
    }
  });
}
