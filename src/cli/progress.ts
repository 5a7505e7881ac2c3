import cliProgress from 'cli-progress';
import type { BuildProgress } from '../guest/image-builder.js';

/**
 * Image build progress on stderr: a progress bar on a terminal, one line per
 * finished step otherwise (CI logs, pipes). Sub-steps (`detail`, e.g. OCI
 * layers) replace the bar's text on a terminal and are indented lines
 * otherwise. Notes carry the sizes (e.g. "pack ext4: 274 MiB (...)").
 */
export function createBuildProgress(stream: NodeJS.WriteStream = process.stderr): BuildProgress & { stop(): void } {
  if (!stream.isTTY) {
    return {
      step: () => undefined,
      stepDone: (name, ms, note) => stream.write(`  ${name}: ${note ?? 'done'} (${ms} ms)\n`),
      detail: (text) => stream.write(`    ${text}\n`),
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: '  [{bar}] {value}/{total} {step}', stream, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let current = '';
  return {
    step(index, total, name) {
      current = name;
      if (!started) {
        bar.start(total, index - 1, { step: name });
        started = true;
      }
      bar.setTotal(total);
      bar.update(index - 1, { step: `${name}...` });
    },
    detail(text) {
      if (started) bar.update({ step: `${current}: ${text}` });
    },
    stepDone(name, ms, note) {
      bar.increment(1, { step: `${name}: ${note ?? 'done'} (${ms} ms)` });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
