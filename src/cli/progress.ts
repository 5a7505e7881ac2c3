import cliProgress from 'cli-progress';
import type { BuildProgress } from '../guest/image-builder.js';

/**
 * Image build progress on stderr: a progress bar on a terminal, one line per
 * finished step otherwise (CI logs, pipes).
 */
export function createBuildProgress(stream: NodeJS.WriteStream = process.stderr): BuildProgress & { stop(): void } {
  if (!stream.isTTY) {
    return {
      step: () => undefined,
      stepDone: (name, ms, note) => stream.write(`  ${name}: ${note ?? 'done'} (${ms} ms)\n`),
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: '  [{bar}] {value}/{total} {step}', stream, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    step(index, total, name) {
      if (!started) {
        bar.start(total, index - 1, { step: name });
        started = true;
      }
      bar.setTotal(total);
      bar.update(index - 1, { step: `${name}...` });
    },
    stepDone(name, ms, note) {
      bar.increment(1, { step: `${name}: ${note ?? 'done'} (${ms} ms)` });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
