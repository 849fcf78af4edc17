// How the native binaries are linked (native/Makefile), read from their ELF headers. The runtime
// and the monitor start for every container, the runtime for every exec, kill and delete too,
// and crib-pinns for every pod's start and stop: none may need the dynamic loader (no program
// interpreter). The runtime and crib-pinns are position-independent as well (ET_DYN), so their
// code keeps its address randomisation. crib-hostports, which loads libnftables for the pods
// with host ports, is the one dynamically linked.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MONITOR } from './support/monitor-harness.js';
import { cribRuntime } from './support/runtime-runner.js';

const ET_EXEC = 2;
const ET_DYN = 3;
const PT_INTERP = 3;

/** The ELF type (e_type) of a 64-bit little-endian binary and the types of its program headers. */
function elf(path: string): { type: number; segments: number[] } {
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error(`${path} is not a 64-bit little-endian ELF file`);
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  const segments = Array.from({ length: phnum }, (_, i) => b.readUInt32LE(phoff + i * phentsize));
  return { type: b.readUInt16LE(16), segments };
}

describe('the native binaries', () => {
  it('crib-runtime is a static PIE: position-independent, without a program interpreter', () => {
    const { type, segments } = elf(cribRuntime);
    expect(type).toBe(ET_DYN);
    expect(segments).not.toContain(PT_INTERP);
  });

  it('crib-pinns is a static PIE too, and crib-hostports has the dynamic loader (it dlopens libnftables)', () => {
    const pinns = elf(fileURLToPath(new URL('../build/crib-pinns', import.meta.url)));
    expect(pinns.type).toBe(ET_DYN);
    expect(pinns.segments).not.toContain(PT_INTERP);
    expect(elf(fileURLToPath(new URL('../build/crib-hostports', import.meta.url))).segments).toContain(PT_INTERP);
  });

  it('crib-monitor is static: without a program interpreter', () => {
    const { type, segments } = elf(MONITOR);
    expect([ET_EXEC, ET_DYN]).toContain(type);
    expect(segments).not.toContain(PT_INTERP);
  });
});
