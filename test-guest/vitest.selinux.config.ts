import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The guest tier's SELinux leg: the same guest booted with SELinux as its security module
// (guest.sh --lsm selinux), running only the suites that need it. Everything else as in
// vitest.config.ts: one registry and daemon for every file, the files one after the other.
export default defineConfig({ ...base, test: { ...base.test, include: ['test-guest/selinux/**/*.test.ts'] } });
