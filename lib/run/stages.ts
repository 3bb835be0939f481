// Stage reporting for long workflows: the CLI draws a progress bar per stage on stderr
// (lib/cli/console-reporter.ts); the API default is silent.

import * as path from 'path';

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

/** A path for messages: relative to the working directory when inside it, else absolute. */
export function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(p);
}
