import { defineConfig } from 'vitest/config';

// Integration tests boot real VMs under TCG: give them time, and run test
// files one at a time so two cores are not oversubscribed by parallel boots.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
