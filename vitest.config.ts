import { defineConfig } from 'vitest/config';

// Tests run as root against the real kernel, registry and binaries: they are slow to set up
// and must not share global state (cgroups, bridges), so every file runs in its own process.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'root-test/**/*.test.ts', 'native/test/**/*.test.ts', 'critest/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
