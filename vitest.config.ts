import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the sources, and integration tests
// that boot real VMs under TCG (they need the guest image, built once by the
// global setup). Files run one at a time so two cores are not
// oversubscribed by parallel boots.
export default defineConfig({
  test: {
    fileParallelism: false,
    projects: [
      {
        test: { name: 'unit', include: ['src/**/*.test.ts'], testTimeout: 60_000 },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
