import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Fails the run when a test leaves a vault* entry in the temp directory.
    globalSetup: ['test/tools/temp-leaks.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        // End-to-end tests mount real FUSE, loop devices and ext4 as root: one file at a time.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // dist/ (run by bin/vault) is built once for the whole run, not in every file.
          globalSetup: ['test/e2e/global-setup.ts'],
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
