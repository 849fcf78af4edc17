// /proc and /sys entries hidden (masked) or made read-only in the container: containerd's
// current defaults. Kubelet sends these same lists for procMount Default and empty ones for
// Unmasked; proto3 cannot tell "empty" from "not sent", and crictl sends nothing, so an empty
// list means the defaults here (CRI-O does the same). Privileged containers get neither.
import { InvalidArgumentError } from '../../errors.js';
import type { LinuxContainerSecurityContext__Output } from '../../gen/runtime/v1/LinuxContainerSecurityContext.js';

export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
  '/proc/scsi',
];

export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

function checked(paths: string[], field: string): string[] {
  for (const p of paths) {
    if (!p.startsWith('/') || p.includes('\0')) throw new InvalidArgumentError(`${field}: "${p}" must be an absolute path`);
  }
  return [...paths];
}

export function maskedAndReadonlyPaths(
  sc: LinuxContainerSecurityContext__Output | null | undefined,
  privileged: boolean,
): { maskedPaths: string[]; readonlyPaths: string[] } {
  if (privileged) return { maskedPaths: [], readonlyPaths: [] };
  const masked = sc?.maskedPaths ?? [];
  const readonly = sc?.readonlyPaths ?? [];
  return {
    maskedPaths: masked.length > 0 ? checked(masked, 'maskedPaths') : [...DEFAULT_MASKED_PATHS],
    readonlyPaths: readonly.length > 0 ? checked(readonly, 'readonlyPaths') : [...DEFAULT_READONLY_PATHS],
  };
}
