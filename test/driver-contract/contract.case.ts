import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveImage, type BuiltImage } from '../../src/guest/image-store.js';
import { dataLayout } from '../../src/store/layout.js';
import { coldBootSteps, restoreSteps, type BootContext } from '../../src/vm/boot-steps.js';
import { CleanupStack } from '../../src/steps/index.js';
import type { SnapshotFiles, VmLaunchSpec, VmmDriver } from '../../src/vmm/driver.js';
import { testDataDir } from '../helpers.js';

/**
 * The contract every VmmDriver must pass, after Hono's `common.case.test.ts`:
 * one suite, run by one small test file per driver. `skipReason` non-null
 * skips the whole suite and prints why (e.g. no Firecracker binary or KVM).
 */
export function defineDriverContract(name: string, makeDriver: () => VmmDriver, skipReason: string | null): void {
  if (skipReason) {
    describe.skip(`VmmDriver contract: ${name} (skipped: ${skipReason})`, () => {
      it('skipped', () => undefined);
    });
    process.stderr.write(`[driver-contract] ${name} skipped: ${skipReason}\n`);
    return;
  }

  describe(`VmmDriver contract: ${name}`, () => {
    let driver: VmmDriver;
    let image: BuiltImage;
    let scratch: string;
    const stacks: CleanupStack[] = [];
    let seq = 0;

    beforeAll(() => {
      driver = makeDriver();
      image = resolveImage(dataLayout(testDataDir()), 'minimal');
      scratch = join(testDataDir(), 'run', 'contract');
      mkdirSync(scratch, { recursive: true });
    });

    afterEach(async () => {
      while (stacks.length) await stacks.pop()!.run();
    });

    afterAll(() => {
      rmSync(scratch, { recursive: true, force: true });
    });

    function spec(extra: Partial<VmLaunchSpec> = {}): VmLaunchSpec {
      const id = `c${process.pid}-${seq++}`;
      return {
        vmId: id,
        runDir: join(scratch, id),
        consoleLogPath: join(scratch, `${id}.console.log`),
        kernelPath: image.kernelPath,
        initrdPath: image.initrdPath,
        kernelArgs: `${driver.baseKernelArgs()} quiet`,
        vcpus: 1,
        memoryMib: 256,
        ...extra,
      };
    }

    async function run(steps: ReturnType<typeof coldBootSteps>, s: VmLaunchSpec): Promise<BootContext> {
      const cleanup = new CleanupStack();
      stacks.push(cleanup);
      const ctx: BootContext = { spec: s, driver, cleanup, deadline: performance.now() + 120_000 };
      await steps.run(ctx);
      return ctx;
    }

    it('boots to a ready agent, runs a command, and stops without leaving processes or sockets', async () => {
      const s = spec();
      const ctx = await run(coldBootSteps(), s);
      const r = await ctx.agent!.exec({ argv: ['uname', '-r'] });
      expect(r.stdout.toString().trim()).toBe(image.manifest.kernel.release);
      const pid = ctx.instance!.pid;
      await ctx.instance!.shutdown(2000);
      await stacks.pop()!.run();
      expect(ctx.instance!.exited).toBe(true);
      expect(() => process.kill(pid, 0)).toThrow();
      expect(existsSync(s.runDir)).toBe(false);
    });

    it('pauses and resumes: a paused guest does not answer, a resumed one does', async () => {
      const ctx = await run(coldBootSteps(), spec());
      await ctx.instance!.pause();
      await expect(ctx.agent!.ping({ timeoutMs: 500 })).rejects.toMatchObject({ code: 'AGENT_TIMEOUT' });
      await ctx.instance!.resume();
      await expect(ctx.agent!.ping({ timeoutMs: 10_000 })).resolves.toMatchObject({ uptimeMs: expect.any(Number) });
    });

    it('rejects operations in the wrong state', async () => {
      const ctx = await run(coldBootSteps(), spec());
      await expect(ctx.instance!.loadSnapshot()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    });

    it('snapshots a paused VM and restores independent clones that answer through the agent', async () => {
      const snapDir = join(scratch, `snap-${seq++}`);
      mkdirSync(snapDir, { recursive: true });
      const files: SnapshotFiles = { memoryPath: join(snapDir, 'memory'), statePath: join(snapDir, 'state') };
      const template = await run(coldBootSteps(), spec({ snapshotMemoryPath: files.memoryPath }));
      await template.agent!.writeFile('/root/marker', 'from-template');
      // Put the template's clock far in the past: a clone must not keep it.
      await template.agent!.setClock(Date.UTC(2001, 0, 1));
      await expect(template.instance!.createSnapshot(files)).rejects.toMatchObject({ code: 'INVALID_STATE' });
      await template.instance!.pause();
      await template.instance!.createSnapshot(files);
      await template.instance!.shutdown(2000);
      await stacks.pop()!.run();

      const clones = [];
      for (let i = 0; i < 2; i++) clones.push(await run(restoreSteps(), spec({ restoreFrom: files })));
      for (const [i, clone] of clones.entries()) {
        const marker = await clone.agent!.readFile('/root/marker');
        expect(marker.data.toString()).toBe('from-template');
        await clone.agent!.writeFile('/root/who', `clone-${i}`);
      }
      for (const [i, clone] of clones.entries()) {
        expect((await clone.agent!.readFile('/root/who')).data.toString()).toBe(`clone-${i}`);
        // refresh_guest set the clock to now: within a minute of the host.
        const date = await clone.agent!.exec({ argv: ['date', '+%s'] });
        expect(Math.abs(Number(date.stdout.toString()) - Date.now() / 1000)).toBeLessThan(60);
      }
      while (stacks.length) await stacks.pop()!.run();
      rmSync(snapDir, { recursive: true, force: true });
      expect(readdirSync(scratch).filter((f) => !f.endsWith('.console.log'))).toEqual([]);
    });
  });
}
