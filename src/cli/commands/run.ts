/**
 * `tfc run`: run a program (python, node, bash) in a fresh VM and print its
 * output; exits with the program's exit code (124 on timeout). With TFC_URL
 * set it asks the daemon (POST /v1/run, which may use a warm pool);
 * otherwise it runs here, in a clone of the profile's golden snapshot, with
 * the same code runner (src/run).
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../errors/index.js';
import { CodeRunner, isRunLanguage, runAnswer, runtimeVmSource, RUN_LANGUAGES, type RunAnswer, type RunFile, type RunLanguage } from '../../run/index.js';
import type { RunResult } from '../../client/index.js';
import { ApiClient } from '../api-client.js';
import type { CliContext, WithContext } from '../context.js';
import { printJson } from '../output.js';
import { exitCodeOf } from '../process-stream.js';

interface RunOptions {
  language?: string;
  eval?: string;
  stdinFile?: string;
  file: string[];
  env: string[];
  timeoutMs?: string;
  pool?: string;
  json?: boolean;
}

const EXIT_TIMED_OUT = 124;

const EXTENSIONS: Record<string, RunLanguage> = { '.py': 'python', '.js': 'node', '.mjs': 'node', '.cjs': 'node', '.sh': 'bash' };

/** The language: --language, else the script's extension. Throws InvalidArgumentError naming the choices. */
export function languageOf(given: string | undefined, script: string | undefined): RunLanguage {
  if (given !== undefined) {
    if (!isRunLanguage(given)) throw new InvalidArgumentError(`--language must be one of ${RUN_LANGUAGES.join(', ')}; got "${given}"`);
    return given;
  }
  const fromExt = script ? EXTENSIONS[extname(script).toLowerCase()] : undefined;
  if (!fromExt) {
    throw new InvalidArgumentError(
      `cannot tell the language of ${script ? `"${script}"` : '-e code'}; pass --language (${RUN_LANGUAGES.join(', ')}); extensions: .py, .js/.mjs/.cjs, .sh`,
    );
  }
  return fromExt;
}

/** `--file LOCAL[:GUEST]`: the local file's bytes, at GUEST (default: its base name, in the run directory). */
export function parseFileOption(spec: string, read: (path: string) => Buffer = readFileSync): RunFile {
  const i = spec.indexOf(':');
  const local = i < 0 ? spec : spec.slice(0, i);
  const guest = i < 0 ? local.split('/').pop()! : spec.slice(i + 1);
  if (!local || !guest) throw new InvalidArgumentError(`--file takes LOCAL or LOCAL:GUEST, got "${spec}"`);
  return { path: guest, content: read(local) };
}

export function parseEnvOption(specs: string[]): Record<string, string> | undefined {
  if (specs.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const spec of specs) {
    const i = spec.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`--env takes NAME=VALUE, got "${spec}"`);
    env[spec.slice(0, i)] = spec.slice(i + 1);
  }
  return env;
}

const collect = (value: string, previous: string[]) => [...previous, value];

async function runLocally(ctx: CliContext, body: Parameters<CodeRunner['run']>[0]): Promise<RunAnswer> {
  const runner = new CodeRunner({
    source: runtimeVmSource({ config: ctx.config, snapshots: await ctx.snapshots(), service: await ctx.vmService() }),
    maxTimeoutMs: ctx.config.api.maxExecTimeoutMs,
    timeoutKey: 'api.max_exec_timeout_ms',
  });
  return runAnswer(await runner.run(body));
}

export function registerRunCommand(program: Command, withContext: WithContext): void {
  program
    .command('run')
    .description("run a program in a fresh VM and print its output; exits with the program's exit code (124 on timeout)")
    .argument('[script]', 'program file (language from its extension: .py python, .js/.mjs/.cjs node, .sh bash)')
    .option('-l, --language <language>', `${RUN_LANGUAGES.join(' | ')} (default: from the script's extension)`)
    .option('-e, --eval <code>', 'the program as text instead of a file')
    .option('--stdin-file <path>', "a local file fed to the program's stdin")
    .option('--file <local[:guest]>', 'copy a local file into the VM (guest path relative to /tmp/tfc-run; repeatable)', collect, [])
    .option('--env <name=value>', 'environment variable for the program (repeatable)', collect, [])
    .option('--timeout-ms <ms>', 'kill the program after this long (default 30000; at most api.max_exec_timeout_ms)')
    .option('--pool <name>', 'daemon only: allocate from this pool (default: a pool of the language profile, else a fresh clone)')
    .option('--json', 'print the result as one JSON object (the POST /v1/run answer)')
    .action(async (script: string | undefined, opts: RunOptions) => {
      process.exitCode = await withContext(async (ctx) => {
        if ((script === undefined) === (opts.eval === undefined)) throw new InvalidArgumentError('give either a script file or -e CODE (one of them)');
        const language = languageOf(opts.language, script);
        const code = opts.eval ?? readFileSync(script!, 'utf8');
        const files = opts.file.map((f) => parseFileOption(f));
        const env = parseEnvOption(opts.env);
        const timeoutMs = opts.timeoutMs === undefined ? undefined : Number(opts.timeoutMs);
        if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0)) {
          throw new InvalidArgumentError(`--timeout-ms must be a non-negative integer, got "${opts.timeoutMs}"`);
        }
        const stdin = opts.stdinFile ? readFileSync(opts.stdinFile) : undefined;
        let r: RunAnswer | RunResult;
        if (process.env.TFC_URL) {
          r = await ApiClient.fromContext(ctx).run({
            language,
            code,
            ...(stdin && { stdin: stdin.toString('utf8') }),
            ...(files.length > 0 && { files: files.map((f) => ({ path: f.path, content: f.content.toString('base64'), encoding: 'base64' })) }),
            ...(env && { env }),
            ...(timeoutMs !== undefined && { timeout_ms: timeoutMs }),
            ...(opts.pool && { pool: opts.pool }),
          });
        } else {
          r = await runLocally(ctx, {
            language,
            code,
            ...(stdin && { stdin }),
            files,
            ...(env && { env }),
            ...(timeoutMs !== undefined && { timeoutMs }),
            ...(opts.pool && { pool: opts.pool }),
          });
        }
        if (opts.json) printJson(r);
        else {
          process.stdout.write(r.stdout);
          process.stderr.write(r.stderr);
          if (r.timed_out) process.stderr.write(`tfc: the program timed out and was killed\n`);
          if (r.stdout_truncated || r.stderr_truncated) process.stderr.write('tfc: output was truncated (1 MiB per stream)\n');
        }
        return r.timed_out ? EXIT_TIMED_OUT : exitCodeOf({ exitCode: r.exit_code, signal: r.signal ?? null, durationMs: r.duration_ms });
      });
    });
}
