import { describe, expect, it } from 'vitest';
import { interpreterArgv, profileFor } from './code-runner.js';
import { checkRunRequest, MAX_RUN_FILES_BYTES, runFilePath } from './run-request.js';

const opts = { dir: '/tmp/tfc-run', defaultTimeoutMs: 30_000, maxTimeoutMs: 60_000, timeoutKey: 'api.max_exec_timeout_ms' };

describe('run requests', () => {
  it('fills in the default timeout (also for 0) and keeps what was given', () => {
    expect(checkRunRequest({ language: 'bash', code: 'true' }, opts)).toMatchObject({ language: 'bash', timeoutMs: 30_000, files: [] });
    expect(checkRunRequest({ language: 'node', code: 'x', timeoutMs: 0 }, opts).timeoutMs).toBe(30_000);
    expect(checkRunRequest({ language: 'python', code: 'x', timeoutMs: 5 }, opts).timeoutMs).toBe(5);
  });

  it('puts relative file paths in the run directory and refuses ".."', () => {
    expect(runFilePath('f', 'a/b.txt', '/tmp/tfc-run')).toBe('/tmp/tfc-run/a/b.txt');
    expect(runFilePath('f', '/etc/x.conf', '/tmp/tfc-run')).toBe('/etc/x.conf');
    expect(() => runFilePath('f', 'a/../../etc/passwd', '/tmp/tfc-run')).toThrow(/must not contain "\.\."/);
    expect(() => runFilePath('f', 'dir/', '/tmp/tfc-run')).toThrow(/names a directory/);
    expect(() => runFilePath('f', 'a\0b', '/tmp/tfc-run')).toThrow(/NUL/);
  });

  it('bounds files in number and size, and refuses duplicates', () => {
    const big = Buffer.alloc(MAX_RUN_FILES_BYTES / 2 + 1);
    expect(() =>
      checkRunRequest(
        {
          language: 'bash',
          code: '',
          files: [
            { path: 'a', content: big },
            { path: 'b', content: big },
          ],
        },
        opts,
      ),
    ).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE', message: expect.stringMatching(/files is 16777218 bytes in all; at most 16777216/) }));
    expect(() =>
      checkRunRequest(
        {
          language: 'bash',
          code: '',
          files: [
            { path: 'a', content: Buffer.alloc(1) },
            { path: '/tmp/tfc-run/a', content: Buffer.alloc(1) },
          ],
        },
        opts,
      ),
    ).toThrow(/repeats/);
  });

  it('checks env names and values, and timeouts against the maximum naming the config key', () => {
    expect(() => checkRunRequest({ language: 'bash', code: '', env: { 'A=B': 'x' } }, opts)).toThrow(/not a valid variable name/);
    expect(() => checkRunRequest({ language: 'bash', code: '', env: { A: 'x\0' } }, opts)).toThrow(/without NUL/);
    expect(() => checkRunRequest({ language: 'bash', code: '', timeoutMs: 60_001 }, opts)).toThrow(/60000 ms \(api\.max_exec_timeout_ms\)/);
    expect(() => checkRunRequest({ language: 'bash', code: '', timeoutMs: -1 }, opts)).toThrow(/non-negative integer/);
  });

  it('maps languages to profiles and interpreters', () => {
    expect([profileFor('python'), profileFor('node'), profileFor('bash')]).toEqual(['python', 'node', undefined]);
    expect(interpreterArgv('python')).toEqual(['python3', 'main.py']);
    expect(interpreterArgv('node')).toEqual(['node', 'main.js']);
    expect(interpreterArgv('bash').slice(0, 2)).toEqual(['sh', '-c']);
    expect(interpreterArgv('bash').at(-1)).toBe('main.sh');
  });
});
