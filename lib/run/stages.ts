// Stage reporting for long workflows: the CLI draws a progress bar per stage on stderr;
// the API default is silent.

import * as path from 'path';
import { ProgressBar, formatDuration } from '../synth/progress-bar';

export enum Stage {
  Import = 'import',
  Synthesize = 'synthesize',
  Quantize = 'quantize',
  Evaluate = 'evaluate',
  Export = 'export',
}

export interface StageReporter {
  start(stage: Stage, detail: string): void;
  progress(stage: Stage, done: number, total: number, fields: string): void;
  done(stage: Stage, summary: string): void;
  warn(message: string): void;
}

export const silentReporter: StageReporter = { start() {}, progress() {}, done() {}, warn() {} };

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

/** A path for messages: relative to the working directory when inside it, else absolute. */
export function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(p);
}
