// The CLI's stage reporter: a progress bar per stage on stderr, one line per finished stage.

import { ProgressBar, formatDuration } from './progress-bar';
import { StageReporter } from '../run/stages';

/** Progress bars on stderr, one line per finished stage. */
export function consoleReporter(stream: NodeJS.WriteStream = process.stderr): StageReporter {
  let bar: ProgressBar | null = null;
  let started = Date.now();
  // The rate is measured from a stage's first report, not its start: work before the first
  // step (calibrating 256 images before the first reconstruction step) would otherwise
  // count as the first step's time and give hours of ETA.
  let first: { at: number; done: number } | null = null;
  return {
    start(stage, detail) {
      started = Date.now();
      first = null;
      bar = new ProgressBar({ stream });
      stream.write(`${stage.padEnd(10)} ${detail}\n`);
    },
    progress(stage, done, total, fields) {
      first ??= { at: Date.now(), done };
      const steps = done - first.done;
      const eta = steps > 0 ? ((Date.now() - first.at) / 1000 / steps) * (total - done) : NaN;
      bar?.update(done, total, stage, `${fields}  ETA ${formatDuration(eta)}`);
    },
    done(stage, summary) {
      bar?.done();
      bar = null;
      stream.write(`${stage.padEnd(10)} done: ${summary} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    },
    warn(message) {
      stream.write(`warning: ${message}\n`);
    },
  };
}
