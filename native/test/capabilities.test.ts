// One capability table in two languages: crib-runtime's (native/src/capabilities.c, read back
// through `crib-runtime features`) and the daemon's (src/container/oci-spec/capabilities.ts)
// must name the same capabilities at the same numbers as <linux/capability.h>, and know every
// capability the running kernel has. A name missing on either side would be an "unknown
// capability" refused by the daemon or silently dropped by the runtime.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_CAPABILITIES } from '../../src/container/oci-spec/capabilities.js';
import { nativeBinaries } from '../../src/native-paths.js';

/** CAP_* numbers as the kernel headers crib-runtime is built against define them. */
function headerNumbers(): Map<string, number> {
  const text = readFileSync('/usr/include/linux/capability.h', 'utf8');
  const numbers = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$/gm)) numbers.set(m[1]!, Number(m[2]));
  return numbers;
}

describe('capability tables', () => {
  const features = JSON.parse(execFileSync(nativeBinaries.runtime, ['features'], { encoding: 'utf8' })) as { linux: { capabilities: string[] } };
  const native = features.linux.capabilities;

  it('crib-runtime and the daemon name the same capabilities in the same order', () => {
    expect(native).toEqual([...ALL_CAPABILITIES]);
  });

  it('number every capability as <linux/capability.h> does', () => {
    const numbers = headerNumbers();
    expect(numbers.get('CAP_CHOWN')).toBe(0);
    ALL_CAPABILITIES.forEach((name, i) => expect([name, numbers.get(name)]).toEqual([name, i]));
    // ...and the header knows nothing the tables lack (CAP_LAST_CAP is an alias, not a capability).
    const known = [...numbers].filter(([name]) => name !== 'CAP_LAST_CAP').map(([name]) => name);
    expect(known.filter((n) => !(ALL_CAPABILITIES as readonly string[]).includes(n))).toEqual([]);
  });

  it('cover every capability of the running kernel', () => {
    const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
    // An older kernel has fewer; a newer one more, which the tables must then name.
    expect(ALL_CAPABILITIES.length).toBeGreaterThanOrEqual(last + 1);
    expect(native.length).toBeGreaterThanOrEqual(last + 1);
  });
});
