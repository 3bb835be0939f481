// The CLI's stage reporter: a progress bar per stage on stderr, one line per finished stage.

import { ProgressBar, formatDuration } from './progress-bar';
import { StageReporter } from '../run/stages';

/** Progress bars on stderr, one line per finished stage. */
export function consoleReporter(stream: NodeJS.WriteStream = process.stderr): StageReporter {
  let bar: ProgressBar | null = null;
  let started = Date.now();
  return {
    start(stage, detail) {
      started = Date.now();
      bar = new ProgressBar({ stream });
      stream.write(`${stage.padEnd(10)} ${detail}\n`);
    },
    progress(stage, done, total, fields) {
      const elapsed = (Date.now() - started) / 1000;
      const eta = done > 0 ? (elapsed * (total - done)) / done : NaN;
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
