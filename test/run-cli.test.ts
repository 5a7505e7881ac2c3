import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertNothingLeft, runTfc, scratchDir, testDataDir } from './helpers.js';

// `tfc run` without a daemon: the program runs in a clone of the default
// profile's golden snapshot (the minimal image), made here, destroyed after.
describe('tfc run (local, real VM)', () => {
  const dir = scratchDir();
  afterAll(async () => {
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('runs -e code with bash and exits with its exit code', async () => {
    const r = await runTfc(['run', '--language', 'bash', '-e', 'echo "local $((6 * 7))"; echo err >&2; exit 3'], { env: { TFC_URL: '' } });
    expect(r.stdout).toBe('local 42\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(3);
  });

  it('runs a script file with --file, --stdin-file and --env, and prints --json', async () => {
    const script = join(dir.path, 'job.sh');
    writeFileSync(script, 'read a; echo "got $a"; cat conf/settings.txt; echo "$LEVEL"\n');
    writeFileSync(join(dir.path, 'in.txt'), 'stdin-line\n');
    writeFileSync(join(dir.path, 'settings.txt'), 'setting=1\n');
    const r = await runTfc(
      [
        'run',
        script,
        '--stdin-file',
        join(dir.path, 'in.txt'),
        '--file',
        `${join(dir.path, 'settings.txt')}:conf/settings.txt`,
        '--env',
        'LEVEL=high',
        '--json',
      ],
      { env: { TFC_URL: '' } },
    );
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ exit_code: 0, stdout: 'got stdin-line\nsetting=1\nhigh\n', timed_out: false, source: 'clone' });
    expect(Object.keys(json.timings)).toEqual(['allocate_ms', 'write_ms', 'run_ms', 'release_ms', 'total_ms']);
  });

  it('exits 124 when the program times out, and 1 naming the languages for an unknown extension', async () => {
    const r = await runTfc(['run', '--language', 'bash', '--timeout-ms', '1000', '-e', 'sleep 20'], { env: { TFC_URL: '' } });
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/timed out/);
    const bad = await runTfc(['run', 'prog.rb'], { env: { TFC_URL: '' } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/pass --language \(python, node, bash\)/);
  });
});
