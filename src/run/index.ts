/**
 * Code execution: run a program (python, node, bash) in a fresh VM and
 * answer with its output, exit code and timings. The runner takes a VM from
 * a pool of the language's profile or clones the profile's golden snapshot,
 * writes the files and the program, runs the interpreter with a timeout and
 * always gives the VM back. Serves POST /v1/run and `tfc run`.
 *
 * Must not import the HTTP framework or the CLI.
 */
export { CodeRunner, interpreterArgv, profileFor, type CodeRunnerOptions, type LeasedVm, type RunResult, type RunVm, type RunVmSource } from './code-runner.js';
export {
  checkRunRequest,
  isRunLanguage,
  runFilePath,
  DEFAULT_RUN_DIR,
  MAX_RUN_CODE_BYTES,
  MAX_RUN_FILES,
  MAX_RUN_FILES_BYTES,
  MAX_RUN_OUTPUT_BYTES,
  MAX_RUN_STDIN_BYTES,
  RUN_LANGUAGES,
  type CheckedRun,
  type RunFile,
  type RunLanguage,
  type RunRequest,
} from './run-request.js';
export { runAnswer, type RunAnswer } from './run-answer.js';
export { runtimeVmSource, type RuntimeVmSourceOptions } from './vm-source.js';
