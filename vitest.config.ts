import { defineConfig } from 'vitest/config';

// Integration suites start real servers and GStreamer pipelines: run files one at a time in
// forked children (native addons and SIGKILL tests need real processes).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
