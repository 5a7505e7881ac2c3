import { describe, expect, it } from 'vitest';
import { readSse } from './sse-client.js';
import { languageOf, parseEnvOption, parseFileOption } from './commands/run.js';
import { exitCodeOf } from './process-stream.js';

describe('tfc run options', () => {
  it('takes the language from --language, else from the extension', () => {
    expect(languageOf(undefined, 'a/b.py')).toBe('python');
    expect(languageOf(undefined, 'x.MJS')).toBe('node');
    expect(languageOf(undefined, 'x.cjs')).toBe('node');
    expect(languageOf(undefined, 'run.sh')).toBe('bash');
    expect(languageOf('bash', 'x.py')).toBe('bash');
    expect(() => languageOf(undefined, 'x.rb')).toThrow(/pass --language \(python, node, bash\)/);
    expect(() => languageOf(undefined, undefined)).toThrow(/-e code/);
    expect(() => languageOf('ruby', undefined)).toThrow(/--language must be one of python, node, bash/);
  });

  it('parses --file LOCAL[:GUEST] and --env NAME=VALUE', () => {
    const read = (p: string) => Buffer.from(`content of ${p}`);
    expect(parseFileOption('/home/u/data.csv', read)).toEqual({ path: 'data.csv', content: Buffer.from('content of /home/u/data.csv') });
    expect(parseFileOption('local.txt:in/remote.txt', read).path).toBe('in/remote.txt');
    expect(() => parseFileOption('a:', read)).toThrow(/LOCAL:GUEST/);
    expect(parseEnvOption(['A=1', 'B=x=y'])).toEqual({ A: '1', B: 'x=y' });
    expect(parseEnvOption([])).toBeUndefined();
    expect(() => parseEnvOption(['=x'])).toThrow(/NAME=VALUE/);
  });

  it('turns an exit into the shell convention', () => {
    expect(exitCodeOf({ exitCode: 4, signal: null, durationMs: 1 })).toBe(4);
    expect(exitCodeOf({ exitCode: null, signal: 'SIGTERM', durationMs: 1 })).toBe(143);
    expect(exitCodeOf({ exitCode: null, signal: 'SIGWEIRD', durationMs: 1 })).toBe(137);
  });
});

describe('readSse', () => {
  const stream = (...parts: string[]) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(new TextEncoder().encode(p));
        c.close();
      },
    });

  it('parses events split anywhere, skips comments, keeps ids', async () => {
    const got = [];
    for await (const m of readSse(stream(': heartbeat\n\nid: 3\nev', 'ent: stdout\r\ndata: {"data":"a"}\n\n', 'event: exit\ndata: 1\ndata: 2\n\n')))
      got.push(m);
    expect(got).toEqual([
      { id: 3, event: 'stdout', data: '{"data":"a"}' },
      { event: 'exit', data: '1\n2' },
    ]);
  });

  it('refuses an endless line', async () => {
    const huge = 'data: ' + 'x'.repeat(5 * 1024 * 1024);
    await expect(async () => {
      for await (const m of readSse(stream(huge))) void m;
    }).rejects.toThrow(/longer than/);
  });
});
