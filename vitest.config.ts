import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the sources, and integration tests
// that boot real VMs under TCG (they need the guest image, built once by the
// global setup). Files run one at a time so two cores are not
// oversubscribed by parallel boots.
export default defineConfig({
  test: {
    fileParallelism: false,
    // `npm run coverage`: line coverage of src/ over both projects (the script
    // fails below 90% of lines; a unit-only run alone stays below it). Tests,
    // test support (src/testing: fakes and fixtures), generated types and the
    // C guest agent are not measured (the agent is not TypeScript; *.gen.ts
    // is produced by a script).
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts', 'src/**/*.gen.ts', 'src/agent/**', 'src/testing/**'],
      reporter: ['text-summary', 'text'],
      // A red test must not hide the figure: report what ran.
      reportOnFailure: true,
    },
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
