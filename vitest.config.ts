import { defineConfig } from 'vitest/config';

// Two tiers, told apart by where a test lives:
//   unit  src/**             no root, no network setup, no compilers or crib binaries: an
//                            unprivileged user runs it (`npx vitest run src`, npm run test:unit).
//   root  root-test/**       one module at a time, laid out like src/, against the real kernel as
//                            root (mounts, netns, cgroups, device nodes, chown) or against
//                            programs built for the test (crib-pinns, runc, a Go client);
//         native/test/**     crib-runtime, crib-monitor and crib-pinns;
//         critest/**         end to end through a real daemon.
// `npx vitest run` (npm test, via deploy/test.sh) runs both. Tests touch real kernel state
// (cgroups, bridges) and must not share it, so every file runs in its own process.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'] } },
      { extends: true, test: { name: 'root', include: ['root-test/**/*.test.ts', 'native/test/**/*.test.ts', 'critest/**/*.test.ts'] } },
    ],
  },
});
