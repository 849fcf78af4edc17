import { defineConfig } from 'vitest/config';

// The guest tier: suites that need a node the host cannot be — a pure cgroup v2 hierarchy with
// every controller — run inside the QEMU guest of test-support/guest/ (npm run test:cgroup2).
// The host tier's config does not include this folder, and global-setup.ts refuses to run
// anywhere but in that guest, so these suites never pass by being skipped.
//
// The guest is emulated (TCG): a process start costs ~50x what it does on the host and loading
// the test's modules (grpc-js, the CRI proto) takes tens of seconds. So the timeouts are long,
// one shared registry and daemon serve every file (global-setup.ts), and the files run one after
// the other in one worker that loads those modules once (isolate: false). Each file still makes
// and removes its own pods and cgroups and checks it left none.
export default defineConfig({
  test: {
    include: ['test-guest/cgroup2/**/*.test.ts'],
    globalSetup: ['test-guest/global-setup.ts'],
    pool: 'forks',
    poolOptions: { forks: { singleFork: true, isolate: false } },
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    teardownTimeout: 120_000,
  },
});
