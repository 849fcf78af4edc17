// Linux capabilities of the container process, as containerd's CRI plugin computes them:
// Docker's default set of 14, CRI add/drop (names with or without CAP_, any case, "ALL"),
// privileged = every capability the daemon itself holds (a runtime cannot grant more).
// Ambient capabilities (KEP-2763) are the one way a non-root user keeps capabilities across
// execve; without them the kernel clears a non-root process's permitted set at exec anyway,
// so the spec says so explicitly instead of relying on it.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../../errors.js';
import type { Capability__Output } from '../../gen/runtime/v1/Capability.js';
import type { OciCapabilities } from './oci-types.js';

/**
 * Every capability by number (include/uapi/linux/capability.h). crib-runtime has the same table
 * (native/src/capabilities.c); native/test/capabilities.test.ts checks that they agree.
 */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** Docker's and containerd's default set, in their order. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/**
 * Capabilities the daemon holds (bounding ∩ permitted of this process): the most a runtime
 * it spawns can hand to a privileged container.
 */
export function currentCapabilities(statusText = readFileSync('/proc/self/status', 'utf8')): string[] {
  const mask = (field: string): bigint => {
    const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(statusText);
    return m ? BigInt(`0x${m[1]}`) : 0n;
  };
  const held = mask('CapBnd') & mask('CapPrm');
  return ALL_CAPABILITIES.filter((_, bit) => (held >> BigInt(bit)) & 1n);
}

/** "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN. */
export function normalizeCapability(name: string, field: string): string {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!(ALL_CAPABILITIES as readonly string[]).includes(full)) {
    throw new InvalidArgumentError(`capabilities.${field}: unknown capability "${name}"`);
  }
  return full;
}

export interface CapabilityInput {
  capabilities: Capability__Output | null | undefined;
  privileged: boolean;
  uid: number;
  /** What currentCapabilities() returns; a parameter so the computation stays pure. */
  hostCapabilities: string[];
}

const isAll = (c: string): boolean => c.trim().toUpperCase() === 'ALL';

export function containerCapabilities(input: CapabilityInput): OciCapabilities {
  const req = input.capabilities;
  const add = req?.addCapabilities ?? [];
  const drop = req?.dropCapabilities ?? [];
  const ambientReq = req?.addAmbientCapabilities ?? [];

  let set: string[];
  if (input.privileged) {
    // Privileged ignores add/drop, as containerd applies WithPrivileged after them.
    set = [...input.hostCapabilities];
  } else {
    set = [...DEFAULT_CAPABILITIES];
    if (add.some(isAll)) set = [...input.hostCapabilities];
    if (drop.some(isAll)) set = [];
    for (const name of add) {
      if (isAll(name)) continue;
      const cap = normalizeCapability(name, 'addCapabilities');
      if (!set.includes(cap)) set.push(cap);
    }
    for (const name of drop) {
      if (isAll(name)) continue;
      const cap = normalizeCapability(name, 'dropCapabilities');
      set = set.filter((c) => c !== cap);
    }
  }

  const ambient: string[] = [];
  for (const name of ambientReq) {
    if (isAll(name)) throw new InvalidArgumentError('capabilities.addAmbientCapabilities: "ALL" is not allowed, name each capability');
    const cap = normalizeCapability(name, 'addAmbientCapabilities');
    if (!ambient.includes(cap)) ambient.push(cap);
    // An ambient capability must also be permitted, inheritable and in the bounding set.
    if (!set.includes(cap)) set.push(cap);
  }

  const root = input.uid === 0;
  return {
    bounding: [...set],
    effective: root ? [...set] : [...ambient],
    permitted: root ? [...set] : [...ambient],
    inheritable: [...ambient],
    ambient,
  };
}
