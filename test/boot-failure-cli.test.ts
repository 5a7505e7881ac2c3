import { afterEach, describe, expect, it } from 'vitest';
import { assertNothingLeft, runTfc, scratchDir, testDataDir, writeConfig } from './helpers.js';

// A boot step that fails reaches the user as the step's own error (code and
// message), not as the runner's wrapper, and leaves nothing behind.
describe('a VM that fails to boot (real QEMU)', () => {
  const scratch = scratchDir('tfc-bootfail-');
  afterEach(async () => {
    await assertNothingLeft(testDataDir());
  });

  it('reports VM_BOOT_TIMEOUT with its code when the boot deadline passes', async () => {
    // One second is far below a TCG cold boot to agent-ready (several seconds).
    const config = writeConfig(scratch.path, '[profiles.hasty]\nboot_timeout_ms = 1000\n');
    try {
      const r = await runTfc(['vm', 'run', '--profile', 'hasty', '--', 'true'], { env: { TFC_CONFIG: config } });
      expect(r.stderr).toMatch(/^tfc: error VM_BOOT_TIMEOUT: /m);
      expect(r.stderr).not.toMatch(/unexpected error|StepFailedError/);
      expect(r.code).toBe(1);
    } finally {
      scratch.remove();
    }
  });
});
